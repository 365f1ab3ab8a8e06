// Whole-file reads with errors that name the file.
#ifndef DATA_FILE_UTIL_H_
#define DATA_FILE_UTIL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace moco {
namespace data {

// The bytes of `path`. NotFoundError if it does not exist, an error naming the file otherwise.
absl::StatusOr<std::string> ReadFileBytes(const std::string& path);

// Like ReadFileBytes, into `*out` (reusing its capacity).
absl::Status ReadFileInto(const std::string& path, std::string* out);

// Sequential reads of `path`, gunzipped if the file is gzip-compressed (raw files are read as
// they are). Memory grows only with the bytes actually read, never with what a header claims.
//
//   ASSIGN_OR_RETURN(auto r, MaybeGzipReader::Open(path));
//   std::string head;
//   ASSIGN_OR_RETURN(size_t got, r->Read(16, &head));   // got < 16 only at the end of the data
class MaybeGzipReader {
 public:
  // NotFoundError if `path` does not exist, PermissionDeniedError if it cannot be opened.
  static absl::StatusOr<std::unique_ptr<MaybeGzipReader>> Open(const std::string& path);
  ~MaybeGzipReader();
  MaybeGzipReader(const MaybeGzipReader&) = delete;
  MaybeGzipReader& operator=(const MaybeGzipReader&) = delete;

  // Appends up to `n` bytes to `*out` and returns how many; fewer than `n` means the data
  // ended. A corrupt or truncated gzip stream gives DataLossError naming the file.
  absl::StatusOr<size_t> Read(size_t n, std::string* out);
  // The size of the file on disk (compressed size for gzip), -1 if unknown.
  int64_t disk_size() const { return disk_size_; }
  // True if the file is gzip-compressed (decided by its content, not its name).
  bool compressed() const;
  const std::string& path() const { return path_; }

 private:
  MaybeGzipReader(std::string path, void* gz, int64_t disk_size)
      : path_(std::move(path)), gz_(gz), disk_size_(disk_size) {}
  std::string path_;
  void* gz_;  // gzFile
  int64_t disk_size_;
};

// True if `path` names an existing regular file.
bool IsRegularFile(const std::string& path);

}  // namespace data
}  // namespace moco

#endif  // DATA_FILE_UTIL_H_
