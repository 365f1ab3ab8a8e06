#include "data/file_util.h"

#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace moco {
namespace data {
namespace {

absl::Status OpenError(const std::string& path, int err) {
  const std::string msg = absl::StrCat("cannot open ", path, ": ", std::strerror(err));
  if (err == ENOENT) return absl::NotFoundError(msg);
  return absl::PermissionDeniedError(msg);
}

}  // namespace

bool IsRegularFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

absl::Status ReadFileInto(const std::string& path, std::string* out) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (f == nullptr) return OpenError(path, errno);
  out->clear();
  struct stat st;
  if (::fstat(fileno(f.get()), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
    out->resize(static_cast<size_t>(st.st_size));
    const size_t n = std::fread(&(*out)[0], 1, out->size(), f.get());
    out->resize(n);
  }
  char buf[1 << 14];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f.get())) > 0) out->append(buf, n);
  if (std::ferror(f.get())) {
    return absl::DataLossError(absl::StrCat("read error in ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFileBytes(const std::string& path) {
  std::string bytes;
  absl::Status status = ReadFileInto(path, &bytes);
  if (!status.ok()) return status;
  return bytes;
}

absl::StatusOr<std::unique_ptr<MaybeGzipReader>> MaybeGzipReader::Open(const std::string& path) {
  errno = 0;
  gzFile gz = gzopen(path.c_str(), "rb");
  if (gz == nullptr) return OpenError(path, errno != 0 ? errno : ENOENT);
  gzbuffer(gz, 1 << 17);
  struct stat st;
  const int64_t disk_size = ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)
                                ? static_cast<int64_t>(st.st_size)
                                : -1;
  return std::unique_ptr<MaybeGzipReader>(new MaybeGzipReader(path, gz, disk_size));
}

MaybeGzipReader::~MaybeGzipReader() { gzclose(static_cast<gzFile>(gz_)); }

bool MaybeGzipReader::compressed() const { return gzdirect(static_cast<gzFile>(gz_)) == 0; }

absl::StatusOr<size_t> MaybeGzipReader::Read(size_t n, std::string* out) {
  gzFile gz = static_cast<gzFile>(gz_);
  size_t total = 0;
  char buf[1 << 16];
  while (total < n) {
    const unsigned want = static_cast<unsigned>(std::min(n - total, sizeof(buf)));
    const int got = gzread(gz, buf, want);
    if (got < 0) {
      int code = 0;
      const char* msg = gzerror(gz, &code);
      return absl::DataLossError(
          absl::StrCat("corrupt gzip data in ", path_, ": ", msg != nullptr ? msg : "unknown"));
    }
    if (got == 0) break;
    out->append(buf, static_cast<size_t>(got));
    total += static_cast<size_t>(got);
  }
  if (total < n) {
    // gzread returns 0 at a truncated stream's end; gzerror reports Z_BUF_ERROR then.
    int code = 0;
    const char* msg = gzerror(gz, &code);
    if (code != Z_OK && code != Z_STREAM_END) {
      return absl::DataLossError(absl::StrCat("corrupt or truncated gzip data in ", path_, ": ",
                                              msg != nullptr ? msg : "unknown"));
    }
  }
  return total;
}

}  // namespace data
}  // namespace moco
