// Test helpers: fresh temporary folders and file writers.
#ifndef DATA_TEST_UTIL_H_
#define DATA_TEST_UTIL_H_

#include <cstdint>
#include <string>

namespace moco {
namespace data {

// A new empty folder under $TEST_TMPDIR (or /tmp), unique per call.
std::string MakeTempDir(const std::string& tag);
// Writes `bytes` to `path` (raw, or gzip-compressed); CHECK-fails on I/O errors.
void WriteFileOrDie(const std::string& path, const std::string& bytes);
void WriteGzipFileOrDie(const std::string& path, const std::string& bytes);
// Big-endian 32-bit integer as 4 bytes (IDX headers).
std::string BigEndian32(uint32_t v);

}  // namespace data
}  // namespace moco

#endif  // DATA_TEST_UTIL_H_
