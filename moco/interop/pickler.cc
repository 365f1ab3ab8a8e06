#include "moco/interop/pickler.h"

#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "moco/core/status_macros.h"
#include "moco/interop/unpickler.h"

namespace moco {
namespace interop {

std::string EncodeElements(const HostArray& array, DType dtype) {
  std::string out;
  const std::vector<float>& v = array.data();
  if (dtype == DType::kInt64) {
    out.resize(v.size() * 8);
    for (size_t k = 0; k < v.size(); ++k) {
      const int64_t i = static_cast<int64_t>(std::llround(v[k]));
      std::memcpy(&out[k * 8], &i, 8);
    }
  } else {
    out.resize(v.size() * 4);
    if (!v.empty()) std::memcpy(out.data(), v.data(), v.size() * 4);
  }
  return out;
}

void Pickler::Int(int64_t v) {
  if (v >= 0 && v < 256) {
    out_.push_back('K');
    out_.push_back(static_cast<char>(v));
  } else if (v >= 0 && v < 65536) {
    out_.push_back('M');
    out_.push_back(static_cast<char>(v & 0xff));
    out_.push_back(static_cast<char>(v >> 8));
  } else if (v >= INT32_MIN && v <= INT32_MAX) {
    out_.push_back('J');
    const uint32_t u = static_cast<uint32_t>(static_cast<int32_t>(v));
    for (int k = 0; k < 4; ++k) out_.push_back(static_cast<char>((u >> (8 * k)) & 0xff));
  } else {
    out_.push_back(static_cast<char>(0x8a));  // LONG1, 8 bytes two's complement
    out_.push_back(8);
    const uint64_t u = static_cast<uint64_t>(v);
    for (int k = 0; k < 8; ++k) out_.push_back(static_cast<char>((u >> (8 * k)) & 0xff));
  }
}

void Pickler::Unicode(const std::string& s) {
  out_.push_back('X');
  const uint32_t n = static_cast<uint32_t>(s.size());
  for (int k = 0; k < 4; ++k) out_.push_back(static_cast<char>((n >> (8 * k)) & 0xff));
  out_ += s;
}

void Pickler::Bytes(const std::string& s) {
  out_.push_back('B');
  const uint32_t n = static_cast<uint32_t>(s.size());
  for (int k = 0; k < 4; ++k) out_.push_back(static_cast<char>((n >> (8 * k)) & 0xff));
  out_ += s;
}

void Pickler::Global(const std::string& module, const std::string& name) {
  absl::StrAppend(&out_, "c", module, "\n", name, "\n");
}

absl::Status Pickler::Save(const PyObject& o, int depth) {
  if (depth > 100) return absl::InvalidArgumentError("object nested too deeply to pickle");
  switch (o.kind) {
    case PyKind::kNone: out_.push_back('N'); return absl::OkStatus();
    case PyKind::kBool: out_.push_back(static_cast<char>(o.b ? 0x88 : 0x89)); return absl::OkStatus();
    case PyKind::kInt: Int(o.i); return absl::OkStatus();
    case PyKind::kFloat: {
      out_.push_back('G');
      uint64_t bits;
      std::memcpy(&bits, &o.f, 8);
      for (int k = 7; k >= 0; --k) out_.push_back(static_cast<char>((bits >> (8 * k)) & 0xff));
      return absl::OkStatus();
    }
    case PyKind::kString: Unicode(o.s); return absl::OkStatus();
    case PyKind::kBytes:
      if (protocol_ < 3) return absl::InvalidArgumentError("bytes need pickle protocol 3");
      Bytes(o.s);
      return absl::OkStatus();
    case PyKind::kList:
      out_.push_back(']');
      if (!o.items.empty()) {
        out_.push_back('(');
        for (const PyRef& v : o.items) RETURN_IF_ERROR(Save(*v, depth + 1));
        out_.push_back('e');
      }
      return absl::OkStatus();
    case PyKind::kTuple:
      if (o.items.empty()) {
        out_.push_back(')');
        return absl::OkStatus();
      }
      if (o.items.size() > 3) out_.push_back('(');
      for (const PyRef& v : o.items) RETURN_IF_ERROR(Save(*v, depth + 1));
      out_.push_back(o.items.size() > 3 ? 't' : static_cast<char>(0x84 + o.items.size()));
      return absl::OkStatus();
    case PyKind::kDict:
      if (o.ordered) {
        Global("collections", "OrderedDict");
        out_.push_back(')');
        out_.push_back('R');
      } else {
        out_.push_back('}');
      }
      if (!o.entries.empty()) {
        out_.push_back('(');
        for (const auto& [k, v] : o.entries) {
          RETURN_IF_ERROR(Save(*k, depth + 1));
          RETURN_IF_ERROR(Save(*v, depth + 1));
        }
        out_.push_back('u');
      }
      return absl::OkStatus();
    case PyKind::kTensor: {
      if (!o.materialized) return absl::InvalidArgumentError("cannot pickle an unread tensor");
      if (o.dtype != DType::kFloat32 && o.dtype != DType::kInt64) {
        return absl::InvalidArgumentError("tensors are written as float32 or int64 only");
      }
      const std::string key = absl::StrCat(storages_.size());
      storages_.emplace_back(key, EncodeElements(o.array, o.dtype));
      Global("torch._utils", "_rebuild_tensor_v2");
      out_.push_back('(');
      // Persistent id: ('storage', storage type, key, location, numel).
      out_.push_back('(');
      Unicode("storage");
      Global("torch", StorageClass(o.dtype));
      Unicode(key);
      Unicode("cpu");
      Int(o.array.numel());
      out_.push_back('t');
      out_.push_back('Q');
      Int(0);  // storage offset
      const std::vector<int64_t>& shape = o.array.shape();
      std::vector<int64_t> stride(shape.size(), 1);
      for (size_t d = shape.size(); d-- > 1;) stride[d - 1] = stride[d] * std::max<int64_t>(shape[d], 1);
      out_.push_back('(');
      for (int64_t s : shape) Int(s);
      out_.push_back('t');
      out_.push_back('(');
      for (int64_t s : stride) Int(s);
      out_.push_back('t');
      out_.push_back(static_cast<char>(0x89));  // requires_grad False
      Global("collections", "OrderedDict");
      out_.push_back(')');
      out_.push_back('R');
      out_.push_back('t');
      out_.push_back('R');
      return absl::OkStatus();
    }
    case PyKind::kNdarray: {
      if (protocol_ < 3) return absl::InvalidArgumentError("numpy arrays need pickle protocol 3");
      if (o.dtype != DType::kFloat32 && o.dtype != DType::kInt64) {
        return absl::InvalidArgumentError("numpy arrays are written as float32 or int64 only");
      }
      Global("numpy.core.multiarray", "_reconstruct");
      Global("numpy", "ndarray");
      Int(0);
      out_.push_back(static_cast<char>(0x85));
      Bytes("b");
      out_.push_back(static_cast<char>(0x87));
      out_.push_back('R');
      out_.push_back('(');
      Int(1);
      out_.push_back('(');
      for (int64_t s : o.array.shape()) Int(s);
      out_.push_back('t');
      Global("numpy", "dtype");
      Unicode(o.dtype == DType::kInt64 ? "i8" : "f4");
      out_.push_back(static_cast<char>(0x89));
      out_.push_back(static_cast<char>(0x88));
      out_.push_back(static_cast<char>(0x87));
      out_.push_back('R');
      out_.push_back('(');
      Int(3);
      Unicode("<");
      out_ += "NNN";
      Int(-1);
      Int(-1);
      Int(0);
      out_.push_back('t');
      out_.push_back('b');
      out_.push_back(static_cast<char>(0x89));  // not Fortran order
      Bytes(EncodeElements(o.array, o.dtype));
      out_.push_back('t');
      out_.push_back('b');
      return absl::OkStatus();
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat("cannot pickle a ", KindName(o.kind)));
  }
}

absl::StatusOr<std::string> Pickler::Dump(const PyObject& obj) {
  out_.clear();
  storages_.clear();
  out_.push_back(static_cast<char>(0x80));
  out_.push_back(static_cast<char>(protocol_));
  RETURN_IF_ERROR(Save(obj, 0));
  out_.push_back('.');
  return out_;
}

}  // namespace interop
}  // namespace moco
