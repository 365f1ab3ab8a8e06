#include "moco/interop/py_object.h"

namespace moco {
namespace interop {

int64_t ElementSize(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return 4;
    case DType::kFloat16: return 2;
    case DType::kBFloat16: return 2;
    case DType::kFloat64: return 8;
    case DType::kInt64: return 8;
    case DType::kInt32: return 4;
  }
  return 4;
}

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "float32";
    case DType::kFloat16: return "float16";
    case DType::kBFloat16: return "bfloat16";
    case DType::kFloat64: return "float64";
    case DType::kInt64: return "int64";
    case DType::kInt32: return "int32";
  }
  return "?";
}

PyObject::~PyObject() {
  if (items.empty() && entries.empty()) return;
  // The outermost destructor on this thread drains a work list; the destructors it triggers
  // only hand their children to that list, so the stack depth stays constant.
  thread_local std::vector<PyRef>* pending = nullptr;
  std::vector<PyRef> local;
  const bool outermost = pending == nullptr;
  std::vector<PyRef>& out = outermost ? local : *pending;
  for (PyRef& child : items) {
    if (child) out.push_back(std::move(child));
  }
  for (auto& [key, value] : entries) {
    if (key) out.push_back(std::move(key));
    if (value) out.push_back(std::move(value));
  }
  if (!outermost) return;
  pending = &local;
  while (!local.empty()) {
    PyRef next = std::move(local.back());
    local.pop_back();
    next.reset();  // may append its own children to `local`
  }
  pending = nullptr;
}

namespace {
PyRef Make(PyKind kind) {
  auto o = std::make_shared<PyObject>();
  o->kind = kind;
  return o;
}
}  // namespace

PyRef MakeNone() { return Make(PyKind::kNone); }
PyRef MakeBool(bool v) {
  PyRef o = Make(PyKind::kBool);
  o->b = v;
  return o;
}
PyRef MakeInt(int64_t v) {
  PyRef o = Make(PyKind::kInt);
  o->i = v;
  return o;
}
PyRef MakeFloat(double v) {
  PyRef o = Make(PyKind::kFloat);
  o->f = v;
  return o;
}
PyRef MakeString(std::string v) {
  PyRef o = Make(PyKind::kString);
  o->s = std::move(v);
  return o;
}
PyRef MakeList(std::vector<PyRef> items) {
  PyRef o = Make(PyKind::kList);
  o->items = std::move(items);
  return o;
}
PyRef MakeTuple(std::vector<PyRef> items) {
  PyRef o = Make(PyKind::kTuple);
  o->items = std::move(items);
  return o;
}
PyRef MakeDict(bool ordered) {
  PyRef o = Make(PyKind::kDict);
  o->ordered = ordered;
  return o;
}
PyRef MakeTensor(HostArray array, DType dtype) {
  PyRef o = Make(PyKind::kTensor);
  o->size = array.shape();
  o->array = std::move(array);
  o->dtype = dtype;
  o->materialized = true;
  return o;
}
PyRef MakeNdarray(HostArray array, DType dtype) {
  PyRef o = MakeTensor(std::move(array), dtype);
  o->kind = PyKind::kNdarray;
  return o;
}

void DictSet(PyObject& dict, const std::string& key, PyRef value) {
  for (auto& [k, v] : dict.entries) {
    if (k->kind == PyKind::kString && k->s == key) {
      v = std::move(value);
      return;
    }
  }
  dict.entries.emplace_back(MakeString(key), std::move(value));
}

PyRef DictGet(const PyObject& dict, const std::string& key) {
  if (dict.kind != PyKind::kDict) return nullptr;
  for (const auto& [k, v] : dict.entries) {
    if (k->kind == PyKind::kString && k->s == key) return v;
  }
  return nullptr;
}

const char* KindName(PyKind kind) {
  switch (kind) {
    case PyKind::kNone: return "None";
    case PyKind::kBool: return "bool";
    case PyKind::kInt: return "int";
    case PyKind::kBigInt: return "int";
    case PyKind::kFloat: return "float";
    case PyKind::kString: return "str";
    case PyKind::kBytes: return "bytes";
    case PyKind::kList: return "list";
    case PyKind::kTuple: return "tuple";
    case PyKind::kDict: return "dict";
    case PyKind::kGlobal: return "global";
    case PyKind::kStorage: return "storage";
    case PyKind::kTensor: return "tensor";
    case PyKind::kNdarray: return "ndarray";
    case PyKind::kDtype: return "dtype";
  }
  return "?";
}

}  // namespace interop
}  // namespace moco
