#include "moco/interop/torch_file.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "moco/core/status_macros.h"
#include "moco/interop/pickler.h"
#include "moco/interop/unpickler.h"
#include "moco/interop/zip_archive.h"

namespace moco {
namespace interop {
namespace {

// 0x1950a86a20f9469cfc6c, little-endian.
constexpr char kLegacyMagic[] = "\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";

absl::Status Refuse(const std::string& label, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(label, ": ", what));
}

// ('storage', torch.XStorage, key, location, numel[, view_metadata]) -> storage type and key.
absl::Status ParseStoragePid(const PyRef& pid, size_t expected_len, DType* dtype,
                             std::string* key, int64_t* numel) {
  if (!pid || pid->kind != PyKind::kTuple || pid->items.size() != expected_len) {
    return absl::InvalidArgumentError("persistent id is not a torch storage reference");
  }
  const auto& a = pid->items;
  if (a[0]->kind != PyKind::kString || a[0]->s != "storage") {
    return absl::InvalidArgumentError("persistent id is not a storage");
  }
  if (a[1]->kind != PyKind::kGlobal || !absl::StartsWith(a[1]->s, "torch.") ||
      !StorageDType(a[1]->s.substr(6), dtype)) {
    return absl::InvalidArgumentError("persistent id has an unsupported storage type");
  }
  if (a[2]->kind != PyKind::kString || a[4]->kind != PyKind::kInt || a[4]->i < 0) {
    return absl::InvalidArgumentError("persistent id has a bad key or element count");
  }
  if (expected_len == 6 && a[5]->kind != PyKind::kNone) {
    return absl::InvalidArgumentError("legacy storage views are not supported");
  }
  *key = a[2]->s;
  *numel = a[4]->i;
  return absl::OkStatus();
}

// All tensors of a file of `file_size` bytes together may hold file_size + 2^20 elements:
// every stored element takes >= 2 bytes, so this allows shared storages viewed a few times
// (tied weights) and refuses a small file of many views of one large storage.
absl::Status MaterializeAll(const std::vector<PyRef>& tensors, size_t file_size,
                            const std::string& label) {
  int64_t budget = static_cast<int64_t>(file_size) + (int64_t{1} << 20);
  for (const PyRef& t : tensors) RETURN_IF_ERROR(MaterializeTensor(*t, label, &budget));
  return absl::OkStatus();
}

absl::StatusOr<LoadedFile> LoadZip(absl::string_view bytes, const std::string& label) {
  ASSIGN_OR_RETURN(ZipReader zip, ZipReader::Open(bytes, label));
  std::string prefix;
  bool found = false;
  for (const std::string& name : zip.names()) {
    const size_t slash = name.find('/');
    if (slash != std::string::npos && name.substr(slash) == "/data.pkl") {
      prefix = name.substr(0, slash + 1);
      found = true;
      break;
    }
  }
  if (!found) return Refuse(label, "zip archive has no <name>/data.pkl: not a torch.save file");
  ASSIGN_OR_RETURN(std::string pickle, zip.Read(prefix + "data.pkl"));
  std::map<std::string, std::shared_ptr<TorchStorage>> storages;
  PersistentLoad load = [&](const PyRef& pid) -> absl::StatusOr<PyRef> {
    DType dtype;
    std::string key;
    int64_t numel;
    RETURN_IF_ERROR(ParseStoragePid(pid, 5, &dtype, &key, &numel));
    std::shared_ptr<TorchStorage>& s = storages[key];
    if (!s) {
      s = std::make_shared<TorchStorage>();
      s->dtype = dtype;
      s->key = key;
      s->numel = numel;
      ASSIGN_OR_RETURN(std::string data, zip.Read(prefix + "data/" + key));
      s->bytes = std::make_shared<const std::string>(std::move(data));
    } else if (s->dtype != dtype || s->numel != numel) {
      return absl::InvalidArgumentError(absl::StrCat("storage '", key, "' is declared twice differently"));
    }
    auto o = std::make_shared<PyObject>();
    o->kind = PyKind::kStorage;
    o->storage = s;
    return o;
  };
  ASSIGN_OR_RETURN(UnpickleResult r, Unpickle(pickle, label + " (data.pkl)", load));
  RETURN_IF_ERROR(MaterializeAll(r.tensors, bytes.size(), label));
  return LoadedFile{FileKind::kTorchZip, r.value};
}

absl::StatusOr<LoadedFile> LoadLegacy(absl::string_view bytes, size_t pos,
                                      const std::string& label) {
  auto next = [&](const PersistentLoad& pl) -> absl::StatusOr<UnpickleResult> {
    ASSIGN_OR_RETURN(UnpickleResult r,
                     Unpickle(bytes.substr(pos), absl::StrCat(label, " (offset ", pos, ")"), pl));
    pos += r.consumed;
    return r;
  };
  ASSIGN_OR_RETURN(UnpickleResult version, next(nullptr));
  if (version.value->kind != PyKind::kInt || version.value->i != 1001) {
    return Refuse(label, "legacy torch file with an unsupported protocol version");
  }
  ASSIGN_OR_RETURN(UnpickleResult sys_info, next(nullptr));
  const PyRef little = DictGet(*sys_info.value, "little_endian");
  if (!little || little->kind != PyKind::kBool || !little->b) {
    return Refuse(label, "legacy torch file is not little-endian");
  }
  std::map<std::string, std::shared_ptr<TorchStorage>> storages;
  PersistentLoad load = [&](const PyRef& pid) -> absl::StatusOr<PyRef> {
    DType dtype;
    std::string key;
    int64_t numel;
    RETURN_IF_ERROR(ParseStoragePid(pid, 6, &dtype, &key, &numel));
    std::shared_ptr<TorchStorage>& s = storages[key];
    if (!s) {
      s = std::make_shared<TorchStorage>();
      s->dtype = dtype;
      s->key = key;
      s->numel = numel;
    } else if (s->dtype != dtype) {
      return absl::InvalidArgumentError(absl::StrCat("storage '", key, "' is declared twice differently"));
    }
    auto o = std::make_shared<PyObject>();
    o->kind = PyKind::kStorage;
    o->storage = s;
    return o;
  };
  ASSIGN_OR_RETURN(UnpickleResult obj, next(load));
  ASSIGN_OR_RETURN(UnpickleResult keys, next(nullptr));
  if (keys.value->kind != PyKind::kList) return Refuse(label, "legacy storage key list missing");
  for (const PyRef& k : keys.value->items) {
    if (k->kind != PyKind::kString) return Refuse(label, "legacy storage key is not a string");
    auto it = storages.find(k->s);
    if (it == storages.end()) return Refuse(label, "legacy storage key list names an unused storage");
    if (bytes.size() - pos < 8) {
      return absl::DataLossError(absl::StrCat(label, ": truncated before storage '", k->s, "'"));
    }
    int64_t numel;
    std::memcpy(&numel, bytes.data() + pos, 8);
    pos += 8;
    const int64_t elem = ElementSize(it->second->dtype);
    if (numel < 0 || static_cast<uint64_t>(numel) > (bytes.size() - pos) / static_cast<uint64_t>(elem)) {
      return absl::DataLossError(absl::StrCat(label, ": storage '", k->s, "' claims ", numel,
                                              " elements but only ", bytes.size() - pos,
                                              " bytes remain (truncated?)"));
    }
    if (numel != it->second->numel) {
      return absl::DataLossError(absl::StrCat(label, ": storage '", k->s, "' holds ", numel,
                                              " elements, its reference says ", it->second->numel));
    }
    it->second->bytes = std::make_shared<const std::string>(bytes.substr(pos, numel * elem));
    pos += numel * elem;
  }
  if (pos != bytes.size()) {
    return absl::DataLossError(absl::StrCat(label, ": ", bytes.size() - pos,
                                            " unexpected trailing bytes after the storages"));
  }
  RETURN_IF_ERROR(MaterializeAll(obj.tensors, bytes.size(), label));
  return LoadedFile{FileKind::kTorchLegacy, obj.value};
}

}  // namespace

const char* FileKindName(FileKind kind) {
  switch (kind) {
    case FileKind::kTorchZip: return "torch.save (zip)";
    case FileKind::kTorchLegacy: return "torch.save (legacy)";
    case FileKind::kPickle: return "pickle";
  }
  return "?";
}

bool LooksLikeZip(absl::string_view bytes) { return absl::StartsWith(bytes, "PK\x03\x04"); }
bool LooksLikePickle(absl::string_view bytes) {
  return bytes.size() >= 2 && static_cast<uint8_t>(bytes[0]) == 0x80 &&
         static_cast<uint8_t>(bytes[1]) >= 2 && static_cast<uint8_t>(bytes[1]) <= 5;
}

absl::StatusOr<LoadedFile> LoadPickleFile(absl::string_view bytes, const std::string& label) {
  if (LooksLikeZip(bytes)) return LoadZip(bytes, label);
  if (!LooksLikePickle(bytes)) {
    return Refuse(label, "neither a torch.save file nor a pickle (unknown magic bytes)");
  }
  ASSIGN_OR_RETURN(UnpickleResult first, Unpickle(bytes, label, nullptr));
  if (first.value->kind == PyKind::kBigInt &&
      first.value->s == std::string(kLegacyMagic, sizeof(kLegacyMagic) - 1)) {
    return LoadLegacy(bytes, first.consumed, label);
  }
  if (first.consumed != bytes.size()) {
    return absl::DataLossError(absl::StrCat(label, ": ", bytes.size() - first.consumed,
                                            " unexpected bytes after the pickle"));
  }
  return LoadedFile{FileKind::kPickle, first.value};
}

absl::StatusOr<std::string> SaveTorchZip(const PyObject& obj) {
  Pickler p(2);
  ASSIGN_OR_RETURN(std::string pickle, p.Dump(obj));
  ZipWriter zip;
  zip.Add("archive/data.pkl", pickle);
  for (const auto& [key, data] : p.storages()) zip.Add("archive/data/" + key, data);
  zip.Add("archive/version", "3\n");
  return zip.Finish();
}

absl::StatusOr<std::string> SavePlainPickle(const PyObject& obj) {
  Pickler p(3);
  ASSIGN_OR_RETURN(std::string pickle, p.Dump(obj));
  if (!p.storages().empty()) {
    return absl::InvalidArgumentError("a plain pickle cannot hold torch tensors");
  }
  return pickle;
}

absl::StatusOr<std::string> ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open (", std::strerror(errno), ")"));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return absl::UnknownError(absl::StrCat(path, ": read failed"));
  return bytes;
}

absl::Status WriteFileAtomically(const std::string& path, absl::string_view bytes) {
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) {
      return absl::UnknownError(absl::StrCat(path, ": cannot create ", tmp, " (", std::strerror(errno), ")"));
    }
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      return absl::UnknownError(absl::StrCat(path, ": write failed (", std::strerror(errno), ")"));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string err = std::strerror(errno);
    std::remove(tmp.c_str());
    return absl::UnknownError(absl::StrCat(path, ": rename failed (", err, ")"));
  }
  return absl::OkStatus();
}

}  // namespace interop
}  // namespace moco
