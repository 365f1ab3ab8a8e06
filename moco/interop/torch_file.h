// torch.save files (both formats) and plain pickles, read safely and written in the zip format.
//
//   zip (torch >= 1.6):  a stored zip: <name>/data.pkl (the object pickle; tensors refer to
//                        storages by key), <name>/data/<key> (raw little-endian storages),
//                        <name>/version ("3\n").
//   legacy (< 1.6):      pickles in sequence: magic number 0x1950a86a20f9469cfc6c, protocol
//                        version 1001, sys info {little_endian, type_sizes}, the object pickle,
//                        the list of storage keys; then per key an int64 element count and the
//                        raw storage.
//   plain pickle:        one pickle, no storages (detectron2 files: numpy arrays).
//
//   ASSIGN_OR_RETURN(std::string bytes, ReadFileBytes(path));
//   ASSIGN_OR_RETURN(LoadedFile f, LoadPickleFile(bytes, path));   // kind from magic bytes
//   ASSIGN_OR_RETURN(std::string zip, SaveTorchZip(*obj));
//   RETURN_IF_ERROR(WriteFileAtomically(out_path, zip));
//
// Reading never executes anything (unpickler.h) and never allocates more than the file holds:
// every size read is checked against the bytes that remain.
#ifndef MOCO_INTEROP_TORCH_FILE_H_
#define MOCO_INTEROP_TORCH_FILE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "moco/interop/py_object.h"

namespace moco {
namespace interop {

enum class FileKind { kTorchZip, kTorchLegacy, kPickle };
const char* FileKindName(FileKind kind);

struct LoadedFile {
  FileKind kind = FileKind::kPickle;
  PyRef value;  // tensors materialized
};

// True when `bytes` starts like a zip archive / a pickle.
bool LooksLikeZip(absl::string_view bytes);
bool LooksLikePickle(absl::string_view bytes);

// Reads a torch.save file (either format) or a plain pickle; errors name `label`.
absl::StatusOr<LoadedFile> LoadPickleFile(absl::string_view bytes, const std::string& label);

// torch.save's zip format (what torch 1.13 writes), archive folder "archive".
absl::StatusOr<std::string> SaveTorchZip(const PyObject& obj);
// One pickle, protocol 3 (numpy arrays allowed, tensors not).
absl::StatusOr<std::string> SavePlainPickle(const PyObject& obj);

// The whole file; errors name the path.
absl::StatusOr<std::string> ReadFileBytes(const std::string& path);
// Writes `path`.tmp.<pid> then renames it over `path`: a failure leaves `path` untouched.
absl::Status WriteFileAtomically(const std::string& path, absl::string_view bytes);

}  // namespace interop
}  // namespace moco

#endif  // MOCO_INTEROP_TORCH_FILE_H_
