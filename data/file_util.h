// Whole-file reads with errors that name the file.
#ifndef DATA_FILE_UTIL_H_
#define DATA_FILE_UTIL_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace moco {
namespace data {

// The bytes of `path`. NotFoundError if it does not exist, an error naming the file otherwise.
absl::StatusOr<std::string> ReadFileBytes(const std::string& path);

// Like ReadFileBytes, into `*out` (reusing its capacity).
absl::Status ReadFileInto(const std::string& path, std::string* out);

// The bytes of `path`, gunzipped if the file is gzip-compressed (raw files are returned as
// they are). A corrupt or truncated gzip stream gives DataLossError naming the file.
absl::StatusOr<std::string> ReadMaybeGzipFile(const std::string& path);

// True if `path` names an existing regular file.
bool IsRegularFile(const std::string& path);

}  // namespace data
}  // namespace moco

#endif  // DATA_FILE_UTIL_H_
