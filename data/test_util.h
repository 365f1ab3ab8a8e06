// Test helpers: fresh temporary folders and file writers.
#ifndef DATA_TEST_UTIL_H_
#define DATA_TEST_UTIL_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace moco {
namespace data {

// A new empty folder under $TEST_TMPDIR (or /tmp), unique per call.
std::string MakeTempDir(const std::string& tag);
// Writes `bytes` to `path` (raw, or gzip-compressed); CHECK-fails on I/O errors.
void WriteFileOrDie(const std::string& path, const std::string& bytes);
void WriteGzipFileOrDie(const std::string& path, const std::string& bytes);
// Big-endian 32-bit integer as 4 bytes (IDX headers).
std::string BigEndian32(uint32_t v);

// An IDX dataset in a fresh temp folder (returned): 64 training and 32 test 28x28 images of 4
// classes (class = which quadrant is bright, plus noise), for end-to-end pipeline tests.
std::string MakeQuadrantIdxDataset();

// One record of data/testdata/image_ops_goldens.txt: "name C H W v0 v1 ...".
struct GoldenArray {
  int c = 0, h = 0, w = 0;
  std::vector<double> v;
};
// All records of a golden file by name; CHECK-fails if it is unreadable or malformed.
std::map<std::string, GoldenArray> ReadGoldensOrDie(const std::string& path);

}  // namespace data
}  // namespace moco

#endif  // DATA_TEST_UTIL_H_
