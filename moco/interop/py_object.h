// The Python values a weights file may hold, as a small tree: what the restricted unpickler
// (unpickler.h) produces and the pickler (pickler.h) writes. Tensors and numpy arrays are
// materialized as float32 HostArrays (contiguous, row-major) with their file dtype kept.
#ifndef MOCO_INTEROP_PY_OBJECT_H_
#define MOCO_INTEROP_PY_OBJECT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "moco/core/host_array.h"

namespace moco {
namespace interop {

enum class PyKind {
  kNone, kBool, kInt, kBigInt, kFloat, kString, kBytes, kList, kTuple, kDict,
  kGlobal,   // an allowed global (callable or class), by "module.name"
  kStorage,  // a torch storage (persistent id), before tensors are materialized
  kTensor,   // a torch tensor
  kNdarray,  // a numpy array
  kDtype,    // a numpy dtype
};

// Element types of tensors and arrays.
enum class DType { kFloat32, kFloat16, kBFloat16, kFloat64, kInt64, kInt32 };
int64_t ElementSize(DType dtype);
const char* DTypeName(DType dtype);

struct PyObject;
using PyRef = std::shared_ptr<PyObject>;

struct TorchStorage {
  DType dtype = DType::kFloat32;
  std::string key;
  int64_t numel = 0;
  std::shared_ptr<const std::string> bytes;  // filled when the storage data is read
};

struct PyObject {
  PyObject() = default;
  PyObject(const PyObject&) = default;
  PyObject(PyObject&&) = default;
  PyObject& operator=(const PyObject&) = default;
  PyObject& operator=(PyObject&&) = default;
  // Frees the children it owns last without recursion (a hostile pickle can nest objects
  // tens of thousands deep; shared_ptr's own destruction would use a stack frame per level).
  ~PyObject();

  PyKind kind = PyKind::kNone;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;  // kString, kBytes, kGlobal (module.name), kBigInt (little-endian bytes),
                  // kDtype (numpy type string such as "f4")
  std::vector<PyRef> items;                       // kList, kTuple
  std::vector<std::pair<PyRef, PyRef>> entries;   // kDict, in insertion order
  bool ordered = false;                           // kDict: a collections.OrderedDict
  // kStorage
  std::shared_ptr<TorchStorage> storage;
  // kTensor (file layout until materialized) and kNdarray
  int64_t storage_offset = 0;
  std::vector<int64_t> size, stride;
  DType dtype = DType::kFloat32;
  HostArray array;        // the values, contiguous (after materialization)
  bool materialized = false;
};

PyRef MakeNone();
PyRef MakeBool(bool v);
PyRef MakeInt(int64_t v);
PyRef MakeFloat(double v);
PyRef MakeString(std::string v);
PyRef MakeList(std::vector<PyRef> items = {});
PyRef MakeTuple(std::vector<PyRef> items = {});
PyRef MakeDict(bool ordered = false);
// A materialized tensor / numpy array holding `array`, written with `dtype`
// (kFloat32 or kInt64; int64 values are the array's floats rounded).
PyRef MakeTensor(HostArray array, DType dtype = DType::kFloat32);
PyRef MakeNdarray(HostArray array, DType dtype = DType::kFloat32);

// Dict helpers (string keys). Get returns nullptr when absent or not a dict.
void DictSet(PyObject& dict, const std::string& key, PyRef value);
PyRef DictGet(const PyObject& dict, const std::string& key);

// "dict", "tensor", ...: for messages.
const char* KindName(PyKind kind);

}  // namespace interop
}  // namespace moco

#endif  // MOCO_INTEROP_PY_OBJECT_H_
