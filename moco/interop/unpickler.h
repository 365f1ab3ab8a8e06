// A restricted pickle reader for weights files: it builds PyObject trees (py_object.h) and never
// executes anything. Only these globals are accepted, each with fixed, checked semantics:
//   collections.OrderedDict                       -> an (ordered) dict
//   torch._utils._rebuild_tensor_v2, _rebuild_parameter -> a tensor
//   torch.{Float,Half,BFloat16,Double,Long,Int}Storage   -> storage types in persistent ids
//   numpy.core.multiarray._reconstruct, numpy.ndarray, numpy.dtype -> a numpy array
//   _codecs.encode(str, "latin1")                  -> bytes (how protocol 2 pickles bytes)
// Any other global, and opcodes outside the data subset (NEWOBJ, INST, OBJ, EXT*, ...), are
// refused with an error naming them, e.g. "pickle global 'posix.system' is not allowed".
//
//   UnpickleResult r; ASSIGN_OR_RETURN(r, Unpickle(bytes, "x.pkl", nullptr));
//
// Tensors come out unmaterialized (they reference storages whose data may come later in the
// file); call MaterializeTensor on each of r.tensors once the storages have their bytes.
// The unpickler itself runs in time and memory linear in the pickle's size. The object graph
// it returns is safe to walk recursively: a cycle (an object inside itself), nesting deeper
// than 1000 levels, or shared references expanding to more than 2^24 objects are refused
// (InvalidArgument), and the refused graph is freed.
#ifndef MOCO_INTEROP_UNPICKLER_H_
#define MOCO_INTEROP_UNPICKLER_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "moco/interop/py_object.h"

namespace moco {
namespace interop {

struct UnpickleResult {
  PyRef value;
  size_t consumed = 0;         // bytes of `data` up to and including STOP
  std::vector<PyRef> tensors;  // every tensor created, in order
};

// Resolves a persistent id (BINPERSID) to an object; null: persistent ids are refused.
using PersistentLoad = std::function<absl::StatusOr<PyRef>(const PyRef& pid)>;

// Reads one pickle from the start of `data`. Errors are DataLoss (truncated or malformed) or
// InvalidArgument (refused content), prefixed with `label` and the byte offset.
absl::StatusOr<UnpickleResult> Unpickle(absl::string_view data, const std::string& label,
                                        const PersistentLoad& persistent_load);

// Fills tensor->array from its storage, offset, size and stride (any non-negative strides,
// copied out contiguous, converted to float32). Errors when the storage has no data yet, the
// view reaches past the storage, the tensor has more elements than its storage, or (with a
// `budget`) more elements than *budget, which is then reduced by the tensor's element count:
// many views of one big storage cannot make a small file allocate without bound.
absl::Status MaterializeTensor(PyObject& tensor, const std::string& label,
                               int64_t* budget = nullptr);

// n elements of `dtype` at `bytes` (little-endian) -> float32.
std::vector<float> ToFloats(const char* bytes, DType dtype, int64_t n);

// Storage class name ("FloatStorage", ...) <-> dtype.
bool StorageDType(const std::string& class_name, DType* dtype);
std::string StorageClass(DType dtype);

}  // namespace interop
}  // namespace moco

#endif  // MOCO_INTEROP_UNPICKLER_H_
