// Writes PyObject trees (py_object.h) as pickles, using only opcodes and globals that both
// Python's pickle and torch 1.13's weights_only unpickler accept, except BINFLOAT (Python
// floats), which torch 1.13's weights_only mode refuses: a tree with floats still loads with a
// plain torch.load / pickle.load.
//
//   Pickler p(/*protocol=*/2);
//   ASSIGN_OR_RETURN(std::string bytes, p.Dump(*obj));
//   for (const auto& [key, data] : p.storages()) ...  // tensors' raw storages, "0", "1", ...
//
// Tensors become torch._utils._rebuild_tensor_v2 calls on a persistent id
// ('storage', torch.FloatStorage|LongStorage, key, 'cpu', numel); their data is collected in
// storages(). Numpy arrays are pickled the way numpy does (_reconstruct + setstate), with
// BINBYTES data: protocol 3 or later.
#ifndef MOCO_INTEROP_PICKLER_H_
#define MOCO_INTEROP_PICKLER_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "moco/interop/py_object.h"

namespace moco {
namespace interop {

class Pickler {
 public:
  explicit Pickler(int protocol) : protocol_(protocol) {}

  // The whole pickle (PROTO ... STOP). InvalidArgument for values it cannot write (globals,
  // storages, unmaterialized tensors, numpy arrays below protocol 3).
  absl::StatusOr<std::string> Dump(const PyObject& obj);

  // (key, little-endian bytes) of every tensor written, in order.
  const std::vector<std::pair<std::string, std::string>>& storages() const { return storages_; }

 private:
  absl::Status Save(const PyObject& obj, int depth);
  void Int(int64_t v);
  void Unicode(const std::string& s);
  void Bytes(const std::string& s);
  void Global(const std::string& module, const std::string& name);

  int protocol_;
  std::string out_;
  std::vector<std::pair<std::string, std::string>> storages_;
};

// float32 values as little-endian bytes of `dtype` (kFloat32, or kInt64 rounded).
std::string EncodeElements(const HostArray& array, DType dtype);

}  // namespace interop
}  // namespace moco

#endif  // MOCO_INTEROP_PICKLER_H_
