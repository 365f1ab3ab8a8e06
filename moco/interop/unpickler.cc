#include "moco/interop/unpickler.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "moco/core/status_macros.h"

namespace moco {
namespace interop {
namespace {

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalize
      exp = 127 - 15 + 1;
      while ((mant & 0x400) == 0) {
        mant <<= 1;
        --exp;
      }
      mant &= 0x3ff;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

const std::map<std::string, DType>& StorageClasses() {
  static const auto* m = new std::map<std::string, DType>{
      {"FloatStorage", DType::kFloat32}, {"HalfStorage", DType::kFloat16},
      {"BFloat16Storage", DType::kBFloat16}, {"DoubleStorage", DType::kFloat64},
      {"LongStorage", DType::kInt64}, {"IntStorage", DType::kInt32}};
  return *m;
}

bool AllowedGlobal(const std::string& name) {
  static const char* const kAllowed[] = {
      "collections.OrderedDict",
      "torch._utils._rebuild_tensor_v2",
      "torch._utils._rebuild_parameter",
      "numpy.core.multiarray._reconstruct",
      "numpy._core.multiarray._reconstruct",
      "numpy.ndarray",
      "numpy.dtype",
      "_codecs.encode",
  };
  for (const char* a : kAllowed) {
    if (name == a) return true;
  }
  if (name.rfind("torch.", 0) == 0 && StorageClasses().count(name.substr(6)) > 0) return true;
  return false;
}

class Reader {
 public:
  Reader(absl::string_view data, const std::string& label, const PersistentLoad& pl)
      : data_(data), label_(label), persistent_load_(pl) {}

  absl::StatusOr<UnpickleResult> Run();

  // Empties every list, tuple and dict this reader made, so that an object graph it refuses
  // (cyclic or too deep) is freed without recursion and without leaking its cycles.
  void Dismantle();

 private:
  void Push(PyRef v) {
    made_.push_back(v);
    stack_.push_back(std::move(v));
  }

  absl::Status Truncated() const {
    return absl::DataLossError(
        absl::StrCat(label_, ": pickle is truncated at byte ", pos_, " (file cut short?)"));
  }
  absl::Status Bad(const std::string& what) const {
    return absl::DataLossError(absl::StrCat(label_, ": malformed pickle at byte ", op_at_, ": ",
                                            what));
  }
  absl::Status Refused(const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat(label_, ": refused pickle content at byte ",
                                                   op_at_, ": ", what, " (nothing executed)"));
  }
  absl::Status Need(uint64_t n) const {
    if (n > data_.size() - pos_) return Truncated();
    return absl::OkStatus();
  }
  absl::StatusOr<uint64_t> Uint(int bytes) {
    RETURN_IF_ERROR(Need(bytes));
    uint64_t v = 0;
    for (int k = 0; k < bytes; ++k) v |= static_cast<uint64_t>(static_cast<uint8_t>(data_[pos_ + k])) << (8 * k);
    pos_ += bytes;
    return v;
  }
  absl::StatusOr<std::string> Take(uint64_t n) {
    RETURN_IF_ERROR(Need(n));
    std::string s(data_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  absl::StatusOr<std::string> Line() {
    const size_t end = data_.find('\n', pos_);
    if (end == absl::string_view::npos) return Truncated();
    std::string s(data_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return s;
  }
  absl::StatusOr<PyRef> Pop() {
    if (stack_.size() <= Floor()) return Bad("stack underflow");
    PyRef v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  size_t Floor() const { return marks_.empty() ? 0 : marks_.back(); }
  absl::StatusOr<std::vector<PyRef>> PopMark() {
    if (marks_.empty()) return Bad("no MARK on the stack");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<PyRef> items(std::make_move_iterator(stack_.begin() + m),
                             std::make_move_iterator(stack_.end()));
    stack_.resize(m);
    return items;
  }
  absl::StatusOr<PyRef*> Top() {
    if (stack_.size() <= Floor()) return Bad("stack underflow");
    return &stack_.back();
  }
  absl::Status Global(const std::string& module, const std::string& name) {
    const std::string full = absl::StrCat(module, ".", name);
    if (!AllowedGlobal(full)) {
      return Refused(absl::StrCat("pickle global '", full, "' is not allowed"));
    }
    auto g = std::make_shared<PyObject>();
    g->kind = PyKind::kGlobal;
    g->s = full;
    Push(std::move(g));
    return absl::OkStatus();
  }
  absl::StatusOr<PyRef> Reduce(const PyObject& func, const PyObject& args);
  absl::Status Build(PyObject& inst, const PyObject& state);
  absl::Status SetItems(PyObject& dict, std::vector<PyRef> kv);

  absl::string_view data_;
  const std::string& label_;
  const PersistentLoad& persistent_load_;
  size_t pos_ = 0;
  size_t op_at_ = 0;
  std::vector<PyRef> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, PyRef> memo_;
  // Per dict: key -> entry index, so SETITEMS replaces in O(log n) (a hostile pickle with
  // millions of keys must not take quadratic time).
  std::map<const PyObject*, std::map<std::string, size_t>> dict_index_;
  std::vector<PyRef> tensors_;
  std::vector<std::weak_ptr<PyObject>> made_;  // everything ever pushed (Dismantle)
};

void Reader::Dismantle() {
  std::vector<PyRef> alive;  // holds every object, so clearing one destroys none of the others
  for (const auto& weak : made_) {
    if (PyRef o = weak.lock()) alive.push_back(std::move(o));
  }
  for (const PyRef& o : alive) {
    o->items.clear();
    o->entries.clear();
  }
  stack_.clear();
  memo_.clear();
  tensors_.clear();
}

// Limits on the object graph a pickle may build (docs/FUZZING.md), so that code walking it
// recursively is safe: no cycles, at most kMaxNesting levels, and at most kMaxExpanded
// objects when a shared object counts each time it is reached (a few bytes of memo
// references can otherwise describe 2^n objects).
constexpr int64_t kMaxNesting = 1000;
constexpr int64_t kMaxExpanded = int64_t{1} << 24;

absl::Status CheckObjectGraph(const PyObject& root, const std::string& label) {
  struct Info {
    bool done = false;
    int64_t height = 1, expanded = 1;
  };
  struct Frame {
    const PyObject* node;
    std::vector<const PyObject*> children;
    size_t next = 0;
  };
  auto children_of = [](const PyObject& o) {
    std::vector<const PyObject*> c;
    for (const PyRef& v : o.items) c.push_back(v.get());
    for (const auto& [k, v] : o.entries) {
      c.push_back(k.get());
      c.push_back(v.get());
    }
    return c;
  };
  auto refused = [&](const std::string& what) {
    return absl::InvalidArgumentError(
        absl::StrCat(label, ": refused pickle content: ", what, " (nothing executed)"));
  };
  std::map<const PyObject*, Info> info;
  std::vector<Frame> path;
  info[&root];
  path.push_back({&root, children_of(root)});
  while (!path.empty()) {
    Frame& top = path.back();
    if (top.next == top.children.size()) {
      Info& mine = info[top.node];
      for (const PyObject* c : top.children) {
        const Info& ci = info[c];
        mine.height = std::max(mine.height, ci.height + 1);
        mine.expanded = std::min(kMaxExpanded + 1, mine.expanded + ci.expanded);
      }
      mine.done = true;
      if (mine.height > kMaxNesting) {
        return refused(absl::StrCat("objects nested more than ", kMaxNesting, " levels deep"));
      }
      if (mine.expanded > kMaxExpanded) {
        return refused(absl::StrCat("shared references expand to more than ", kMaxExpanded,
                                    " objects"));
      }
      path.pop_back();
      continue;
    }
    const PyObject* child = top.children[top.next++];
    if (child == nullptr) continue;
    auto it = info.find(child);
    if (it != info.end()) {
      if (!it->second.done) return refused("an object contains itself (a reference cycle)");
      continue;
    }
    info[child];
    path.push_back({child, children_of(*child)});
  }
  return absl::OkStatus();
}

bool IsInt(const PyRef& o) { return o && o->kind == PyKind::kInt; }

absl::StatusOr<std::vector<int64_t>> IntTuple(const PyRef& o, const char* what) {
  if (!o || (o->kind != PyKind::kTuple && o->kind != PyKind::kList)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not a tuple"));
  }
  std::vector<int64_t> out;
  for (const PyRef& v : o->items) {
    if (!IsInt(v)) return absl::InvalidArgumentError(absl::StrCat(what, " holds a non-integer"));
    out.push_back(v->i);
  }
  return out;
}

absl::StatusOr<PyRef> Reader::Reduce(const PyObject& func, const PyObject& args) {
  if (func.kind != PyKind::kGlobal) {
    return Refused(absl::StrCat("REDUCE of a ", KindName(func.kind), " (only allowed globals)"));
  }
  if (args.kind != PyKind::kTuple) return Bad("REDUCE arguments are not a tuple");
  const std::vector<PyRef>& a = args.items;
  const std::string& f = func.s;
  auto wrong = [&]() { return Bad(absl::StrCat("unexpected arguments to ", f)); };
  if (f == "collections.OrderedDict") {
    if (!a.empty()) return wrong();
    return MakeDict(/*ordered=*/true);
  }
  if (f == "torch._utils._rebuild_tensor_v2") {
    if (a.size() < 6 || a.size() > 7 || !a[0] || a[0]->kind != PyKind::kStorage || !IsInt(a[1])) {
      return wrong();
    }
    auto t = std::make_shared<PyObject>();
    t->kind = PyKind::kTensor;
    t->storage = a[0]->storage;
    t->dtype = t->storage->dtype;
    t->storage_offset = a[1]->i;
    auto size = IntTuple(a[2], "tensor size");
    auto stride = IntTuple(a[3], "tensor stride");
    if (!size.ok() || !stride.ok() || size->size() != stride->size()) return wrong();
    t->size = *size;
    t->stride = *stride;
    tensors_.push_back(t);
    return t;
  }
  if (f == "torch._utils._rebuild_parameter") {
    if (a.size() != 3 || !a[0] || a[0]->kind != PyKind::kTensor) return wrong();
    return a[0];
  }
  if (f == "numpy.core.multiarray._reconstruct" || f == "numpy._core.multiarray._reconstruct") {
    if (a.size() != 3 || !a[0] || a[0]->kind != PyKind::kGlobal || a[0]->s != "numpy.ndarray") {
      return wrong();
    }
    auto n = std::make_shared<PyObject>();
    n->kind = PyKind::kNdarray;
    return n;
  }
  if (f == "numpy.dtype") {
    if (a.empty() || !a[0] || a[0]->kind != PyKind::kString) return wrong();
    auto d = std::make_shared<PyObject>();
    d->kind = PyKind::kDtype;
    d->s = a[0]->s;
    return d;
  }
  if (f == "_codecs.encode") {
    if (a.size() != 2 || !a[0] || a[0]->kind != PyKind::kString || !a[1] ||
        a[1]->kind != PyKind::kString || (a[1]->s != "latin1" && a[1]->s != "latin-1")) {
      return wrong();
    }
    // UTF-8 code points <= 255 -> bytes.
    auto out = std::make_shared<PyObject>();
    out->kind = PyKind::kBytes;
    const std::string& s = a[0]->s;
    out->s.reserve(s.size());
    for (size_t k = 0; k < s.size(); ++k) {
      const uint8_t c = static_cast<uint8_t>(s[k]);
      if (c < 0x80) {
        out->s.push_back(static_cast<char>(c));
      } else if ((c == 0xc2 || c == 0xc3) && k + 1 < s.size()) {
        out->s.push_back(static_cast<char>(((c & 0x03) << 6) | (static_cast<uint8_t>(s[k + 1]) & 0x3f)));
        ++k;
      } else {
        return wrong();
      }
    }
    return out;
  }
  return Refused(absl::StrCat("calling '", f, "' is not allowed"));
}

bool NumpyDType(const std::string& s, DType* d) {
  static const std::map<std::string, DType> m = {{"f4", DType::kFloat32}, {"f2", DType::kFloat16},
                                                 {"f8", DType::kFloat64}, {"i8", DType::kInt64},
                                                 {"i4", DType::kInt32}};
  auto it = m.find(s);
  if (it == m.end()) return false;
  *d = it->second;
  return true;
}

absl::Status Reader::Build(PyObject& inst, const PyObject& state) {
  if (inst.kind == PyKind::kDict || inst.kind == PyKind::kTensor) {
    return absl::OkStatus();  // attributes (an OrderedDict's _metadata): ignored
  }
  if (inst.kind == PyKind::kDtype) {
    if (state.kind != PyKind::kTuple || state.items.size() < 2 || !state.items[1] ||
        state.items[1]->kind != PyKind::kString) {
      return Bad("numpy dtype state is not (version, byteorder, ...)");
    }
    const std::string& order = state.items[1]->s;
    if (order == ">") return Refused("big-endian numpy arrays are not supported");
    return absl::OkStatus();
  }
  if (inst.kind == PyKind::kNdarray) {
    if (state.kind != PyKind::kTuple || state.items.size() != 5) {
      return Bad("numpy array state is not (version, shape, dtype, fortran, data)");
    }
    auto shape = IntTuple(state.items[1], "numpy array shape");
    const PyRef& dt = state.items[2];
    const PyRef& fortran = state.items[3];
    const PyRef& bytes = state.items[4];
    if (!shape.ok()) return Bad(std::string(shape.status().message()));
    if (!dt || dt->kind != PyKind::kDtype) return Bad("numpy array dtype missing");
    DType dtype;
    if (!NumpyDType(dt->s, &dtype)) {
      return Refused(absl::StrCat("numpy dtype '", dt->s, "' is not supported"));
    }
    if (!bytes || bytes->kind != PyKind::kBytes) {
      return Refused("numpy array data is not raw bytes (object arrays are not supported)");
    }
    auto numel = HostArray::NumElements(*shape);
    if (!numel.ok()) return Bad(std::string(numel.status().message()));
    if (static_cast<uint64_t>(bytes->s.size()) !=
        static_cast<uint64_t>(*numel) * static_cast<uint64_t>(ElementSize(dtype))) {
      return Bad(absl::StrCat("numpy array of shape ", ShapeToString(*shape), " has ",
                              bytes->s.size(), " data bytes"));
    }
    std::vector<float> v = ToFloats(bytes->s.data(), dtype, *numel);
    const bool is_fortran = fortran && fortran->kind == PyKind::kBool && fortran->b;
    if (is_fortran && shape->size() > 1) {  // column-major -> row-major
      std::vector<float> c(v.size());
      const size_t r = shape->size();
      std::vector<int64_t> idx(r, 0);
      for (int64_t k = 0; k < *numel; ++k) {
        int64_t f_off = 0, mul = 1, c_off = 0;
        for (size_t d = 0; d < r; ++d) {
          f_off += idx[d] * mul;
          mul *= (*shape)[d];
        }
        for (size_t d = 0; d < r; ++d) c_off = c_off * (*shape)[d] + idx[d];
        c[static_cast<size_t>(c_off)] = v[static_cast<size_t>(f_off)];
        for (size_t d = 0; d < r; ++d) {
          if (++idx[d] < (*shape)[d]) break;
          idx[d] = 0;
        }
      }
      v.swap(c);
    }
    ASSIGN_OR_RETURN(inst.array, HostArray::FromData(*shape, std::move(v)));
    inst.size = *shape;
    inst.dtype = dtype;
    inst.materialized = true;
    return absl::OkStatus();
  }
  return Refused(absl::StrCat("BUILD on a ", KindName(inst.kind)));
}

absl::Status Reader::SetItems(PyObject& dict, std::vector<PyRef> kv) {
  if (dict.kind != PyKind::kDict) return Refused(absl::StrCat("SETITEM on a ", KindName(dict.kind)));
  if (kv.size() % 2 != 0) return Bad("odd number of SETITEMS values");
  std::map<std::string, size_t>& index = dict_index_[&dict];
  for (size_t k = 0; k < kv.size(); k += 2) {
    const PyRef& key = kv[k];
    std::string id;
    if (key->kind == PyKind::kString) id = "s" + key->s;
    if (key->kind == PyKind::kInt) id = absl::StrCat("i", key->i);
    if (!id.empty()) {
      auto [it, inserted] = index.emplace(id, dict.entries.size());
      if (!inserted) {
        dict.entries[it->second].second = kv[k + 1];
        continue;
      }
    }
    dict.entries.emplace_back(key, kv[k + 1]);
  }
  return absl::OkStatus();
}

absl::StatusOr<UnpickleResult> Reader::Run() {
  while (true) {
    op_at_ = pos_;
    if (pos_ >= data_.size()) return Truncated();
    const uint8_t op = static_cast<uint8_t>(data_[pos_++]);
    switch (op) {
      case 0x80: {  // PROTO
        ASSIGN_OR_RETURN(uint64_t p, Uint(1));
        if (p > 5) return Bad(absl::StrCat("unknown pickle protocol ", p));
        break;
      }
      case 0x95: {  // FRAME: a length hint only
        ASSIGN_OR_RETURN(uint64_t n, Uint(8));
        (void)n;
        break;
      }
      case '.': {  // STOP
        if (stack_.size() != 1 || !marks_.empty()) return Bad("STOP with a stack of other than one value");
        UnpickleResult r;
        r.value = stack_.back();
        r.consumed = pos_;
        r.tensors = std::move(tensors_);
        return r;
      }
      case '(': marks_.push_back(stack_.size()); break;
      case '0': { ASSIGN_OR_RETURN(PyRef v, Pop()); break; }
      case '1': { ASSIGN_OR_RETURN(auto v, PopMark()); break; }
      case '2': { ASSIGN_OR_RETURN(PyRef* t, Top()); Push(*t); break; }
      case 'N': Push(MakeNone()); break;
      case 0x88: Push(MakeBool(true)); break;
      case 0x89: Push(MakeBool(false)); break;
      case 'J': {
        ASSIGN_OR_RETURN(uint64_t v, Uint(4));
        Push(MakeInt(static_cast<int32_t>(static_cast<uint32_t>(v))));
        break;
      }
      case 'K': { ASSIGN_OR_RETURN(uint64_t v, Uint(1)); Push(MakeInt(static_cast<int64_t>(v))); break; }
      case 'M': { ASSIGN_OR_RETURN(uint64_t v, Uint(2)); Push(MakeInt(static_cast<int64_t>(v))); break; }
      case 0x8a: {  // LONG1
        ASSIGN_OR_RETURN(uint64_t n, Uint(1));
        ASSIGN_OR_RETURN(std::string b, Take(n));
        if (n <= 8) {
          uint64_t v = 0;
          for (size_t k = 0; k < n; ++k) v |= static_cast<uint64_t>(static_cast<uint8_t>(b[k])) << (8 * k);
          if (n > 0 && n < 8 && (static_cast<uint8_t>(b[n - 1]) & 0x80)) v |= ~uint64_t{0} << (8 * n);
          Push(MakeInt(static_cast<int64_t>(v)));
        } else {
          auto big = std::make_shared<PyObject>();
          big->kind = PyKind::kBigInt;
          big->s = std::move(b);
          Push(std::move(big));
        }
        break;
      }
      case 'G': {  // BINFLOAT, big-endian
        RETURN_IF_ERROR(Need(8));
        uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) bits = (bits << 8) | static_cast<uint8_t>(data_[pos_ + k]);
        pos_ += 8;
        double d;
        std::memcpy(&d, &bits, 8);
        Push(MakeFloat(d));
        break;
      }
      case 'X': case 0x8c: case 0x8d: case 'B': case 'C': case 0x8e: case 'U': case 'T': {
        const int width = (op == 'X' || op == 'B' || op == 'T') ? 4 : (op == 0x8d || op == 0x8e) ? 8 : 1;
        ASSIGN_OR_RETURN(uint64_t n, Uint(width));
        ASSIGN_OR_RETURN(std::string s, Take(n));
        auto o = std::make_shared<PyObject>();
        o->kind = (op == 'B' || op == 'C' || op == 0x8e) ? PyKind::kBytes : PyKind::kString;
        o->s = std::move(s);
        Push(std::move(o));
        break;
      }
      case ']': Push(MakeList()); break;
      case ')': Push(MakeTuple()); break;
      case '}': Push(MakeDict()); break;
      case 'a': {
        ASSIGN_OR_RETURN(PyRef v, Pop());
        ASSIGN_OR_RETURN(PyRef* list, Top());
        if ((*list)->kind != PyKind::kList) return Refused(absl::StrCat("APPEND to a ", KindName((*list)->kind)));
        (*list)->items.push_back(std::move(v));
        break;
      }
      case 'e': {
        ASSIGN_OR_RETURN(auto items, PopMark());
        ASSIGN_OR_RETURN(PyRef* list, Top());
        if ((*list)->kind != PyKind::kList) return Refused(absl::StrCat("APPENDS to a ", KindName((*list)->kind)));
        for (auto& v : items) (*list)->items.push_back(std::move(v));
        break;
      }
      case 't': {
        ASSIGN_OR_RETURN(auto items, PopMark());
        Push(MakeTuple(std::move(items)));
        break;
      }
      case 0x85: case 0x86: case 0x87: {
        const size_t n = op - 0x84;
        if (stack_.size() < Floor() + n) return Bad("stack underflow");
        std::vector<PyRef> items(stack_.end() - n, stack_.end());
        stack_.resize(stack_.size() - n);
        Push(MakeTuple(std::move(items)));
        break;
      }
      case 's': {
        ASSIGN_OR_RETURN(PyRef v, Pop());
        ASSIGN_OR_RETURN(PyRef k, Pop());
        ASSIGN_OR_RETURN(PyRef* d, Top());
        RETURN_IF_ERROR(SetItems(**d, {k, v}));
        break;
      }
      case 'u': {
        ASSIGN_OR_RETURN(auto items, PopMark());
        ASSIGN_OR_RETURN(PyRef* d, Top());
        RETURN_IF_ERROR(SetItems(**d, std::move(items)));
        break;
      }
      case 'q': case 'r': case 0x94: {
        uint64_t idx = memo_.size();
        if (op != 0x94) { ASSIGN_OR_RETURN(idx, Uint(op == 'q' ? 1 : 4)); }
        ASSIGN_OR_RETURN(PyRef* t, Top());
        memo_[idx] = *t;
        break;
      }
      case 'h': case 'j': {
        ASSIGN_OR_RETURN(uint64_t idx, Uint(op == 'h' ? 1 : 4));
        auto it = memo_.find(idx);
        if (it == memo_.end()) return Bad(absl::StrCat("memo entry ", idx, " is not defined"));
        Push(it->second);
        break;
      }
      case 'c': {
        ASSIGN_OR_RETURN(std::string module, Line());
        ASSIGN_OR_RETURN(std::string name, Line());
        RETURN_IF_ERROR(Global(module, name));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        ASSIGN_OR_RETURN(PyRef name, Pop());
        ASSIGN_OR_RETURN(PyRef module, Pop());
        if (name->kind != PyKind::kString || module->kind != PyKind::kString) {
          return Bad("STACK_GLOBAL needs two strings");
        }
        RETURN_IF_ERROR(Global(module->s, name->s));
        break;
      }
      case 'R': {
        ASSIGN_OR_RETURN(PyRef args, Pop());
        ASSIGN_OR_RETURN(PyRef func, Pop());
        ASSIGN_OR_RETURN(PyRef out, Reduce(*func, *args));
        Push(std::move(out));
        break;
      }
      case 'b': {
        ASSIGN_OR_RETURN(PyRef state, Pop());
        ASSIGN_OR_RETURN(PyRef* inst, Top());
        RETURN_IF_ERROR(Build(**inst, *state));
        break;
      }
      case 'Q': {
        ASSIGN_OR_RETURN(PyRef pid, Pop());
        if (!persistent_load_) return Refused("persistent ids are not allowed in this pickle");
        auto loaded = persistent_load_(pid);
        if (!loaded.ok()) return Refused(std::string(loaded.status().message()));
        Push(*std::move(loaded));
        break;
      }
      default:
        return Refused(absl::StrFormat("pickle opcode 0x%02x ('%c') is not allowed", op,
                                       (op >= 32 && op < 127) ? static_cast<char>(op) : '?'));
    }
  }
}

}  // namespace

static float ElementAt(const char* p, DType dtype) {
  float v = 0;
  switch (dtype) {
    case DType::kFloat32: std::memcpy(&v, p, 4); break;
    case DType::kFloat64: { double d; std::memcpy(&d, p, 8); v = static_cast<float>(d); break; }
    case DType::kFloat16: { uint16_t h; std::memcpy(&h, p, 2); v = HalfToFloat(h); break; }
    case DType::kBFloat16: {
      uint16_t h; std::memcpy(&h, p, 2);
      const uint32_t bits = static_cast<uint32_t>(h) << 16;
      std::memcpy(&v, &bits, 4);
      break;
    }
    case DType::kInt64: { int64_t i; std::memcpy(&i, p, 8); v = static_cast<float>(i); break; }
    case DType::kInt32: { int32_t i; std::memcpy(&i, p, 4); v = static_cast<float>(i); break; }
  }
  return v;
}

std::vector<float> ToFloats(const char* bytes, DType dtype, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  const int64_t size = ElementSize(dtype);
  for (int64_t k = 0; k < n; ++k) out[static_cast<size_t>(k)] = ElementAt(bytes + k * size, dtype);
  return out;
}

bool StorageDType(const std::string& class_name, DType* dtype) {
  auto it = StorageClasses().find(class_name);
  if (it == StorageClasses().end()) return false;
  *dtype = it->second;
  return true;
}

std::string StorageClass(DType dtype) {
  for (const auto& [name, d] : StorageClasses()) {
    if (d == dtype) return name;
  }
  return "FloatStorage";
}

absl::StatusOr<UnpickleResult> Unpickle(absl::string_view data, const std::string& label,
                                        const PersistentLoad& persistent_load) {
  Reader reader(data, label, persistent_load);
  absl::StatusOr<UnpickleResult> result = reader.Run();
  absl::Status status = result.status();
  if (status.ok()) status = CheckObjectGraph(*result->value, label);
  if (status.ok()) return result;
  result = status;  // drops the result's references, then the graph goes
  reader.Dismantle();
  return status;
}

absl::Status MaterializeTensor(PyObject& t, const std::string& label, int64_t* budget) {
  if (t.materialized) return absl::OkStatus();
  auto bad = [&](const std::string& what) {
    return absl::DataLossError(absl::StrCat(label, ": tensor of size ", ShapeToString(t.size),
                                            " in storage '", t.storage ? t.storage->key : "?",
                                            "': ", what));
  };
  if (!t.storage || !t.storage->bytes) return bad("its storage has no data in the file");
  const TorchStorage& s = *t.storage;
  if (static_cast<int64_t>(s.bytes->size()) != s.numel * ElementSize(s.dtype)) {
    return bad(absl::StrCat("storage holds ", s.bytes->size(), " bytes, expected ",
                            s.numel, " x ", ElementSize(s.dtype)));
  }
  auto numel = HostArray::NumElements(t.size);
  if (!numel.ok()) return bad(std::string(numel.status().message()));
  if (t.storage_offset < 0) return bad("negative storage offset");
  int64_t last = t.storage_offset;
  for (size_t d = 0; d < t.size.size(); ++d) {
    if (t.stride[d] < 0) return bad("negative stride");
    if (t.size[d] > 0) {
      if (t.stride[d] > 0 && t.size[d] - 1 > (INT64_MAX / 2 - last) / t.stride[d]) return bad("stride overflow");
      last += (t.size[d] - 1) * t.stride[d];
    }
  }
  if (*numel > 0 && last >= s.numel) {
    return bad(absl::StrCat("view reaches element ", last, " of a storage of ", s.numel));
  }
  if (*numel > std::max<int64_t>(s.numel, 1)) {
    return bad("more elements than its storage (overlapping strides are not supported)");
  }
  if (budget != nullptr) {
    if (*numel > *budget) {
      return bad("the file's tensors hold more elements than its size allows (views of shared "
                 "storages beyond the limit)");
    }
    *budget -= *numel;
  }
  const char* data = s.bytes->data();
  const int64_t elem = ElementSize(s.dtype);
  std::vector<float> out(static_cast<size_t>(*numel));
  const size_t r = t.size.size();
  std::vector<int64_t> idx(r, 0);
  for (int64_t k = 0; k < *numel; ++k) {
    int64_t off = t.storage_offset;
    for (size_t d = 0; d < r; ++d) off += idx[d] * t.stride[d];
    out[static_cast<size_t>(k)] = ElementAt(data + off * elem, s.dtype);
    for (size_t d = r; d-- > 0;) {
      if (++idx[d] < t.size[d]) break;
      idx[d] = 0;
    }
  }
  auto array = HostArray::FromData(t.size, std::move(out));
  if (!array.ok()) return bad(std::string(array.status().message()));
  t.array = *std::move(array);
  t.materialized = true;
  return absl::OkStatus();
}

}  // namespace interop
}  // namespace moco
