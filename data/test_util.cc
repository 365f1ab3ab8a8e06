#include "data/test_util.h"

#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace moco {
namespace data {

std::string MakeTempDir(const std::string& tag) {
  static std::atomic<int> counter{0};
  const char* base = std::getenv("TEST_TMPDIR");
  const std::string dir = absl::StrCat(base != nullptr ? base : "/tmp", "/", tag, "_", getpid(),
                                       "_", counter.fetch_add(1));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

void WriteFileOrDie(const std::string& path, const std::string& bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  CHECK(f != nullptr) << path;
  CHECK_EQ(std::fwrite(bytes.data(), 1, bytes.size(), f), bytes.size()) << path;
  CHECK_EQ(std::fclose(f), 0) << path;
}

void WriteGzipFileOrDie(const std::string& path, const std::string& bytes) {
  gzFile gz = gzopen(path.c_str(), "wb");
  CHECK(gz != nullptr) << path;
  CHECK_EQ(gzwrite(gz, bytes.data(), static_cast<unsigned>(bytes.size())),
           static_cast<int>(bytes.size()));
  CHECK_EQ(gzclose(gz), Z_OK) << path;
}

std::string BigEndian32(uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[i] = static_cast<char>((v >> (24 - 8 * i)) & 0xFF);
  return s;
}

std::map<std::string, GoldenArray> ReadGoldensOrDie(const std::string& path) {
  std::map<std::string, GoldenArray> m;
  std::ifstream in(path);
  CHECK(in) << "cannot open " << path;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ss(line);
    std::string name;
    GoldenArray g;
    ss >> name >> g.c >> g.h >> g.w;
    double x;
    while (ss >> x) g.v.push_back(x);
    CHECK_EQ(g.v.size(), static_cast<size_t>(g.c) * g.h * g.w) << path << ": " << name;
    m[name] = std::move(g);
  }
  CHECK(!m.empty()) << path << " has no records";
  return m;
}

std::string MakeQuadrantIdxDataset() {
  const std::string dir = MakeTempDir("idx");
  std::mt19937 rng(5);
  auto write_split = [&](const std::string& prefix, int n) {
    std::string images = BigEndian32(0x803) + BigEndian32(n) +
                         BigEndian32(28) + BigEndian32(28);
    std::string labels = BigEndian32(0x801) + BigEndian32(n);
    for (int i = 0; i < n; ++i) {
      const int label = i % 4;
      for (int y = 0; y < 28; ++y) {
        for (int x = 0; x < 28; ++x) {
          const bool bright = (y < 14) == (label < 2) && (x < 14) == (label % 2 == 0);
          images.push_back(static_cast<char>((bright ? 160 : 20) + rng() % 60));
        }
      }
      labels.push_back(static_cast<char>(label));
    }
    WriteFileOrDie(dir + "/" + prefix + "-images-idx3-ubyte", images);
    WriteFileOrDie(dir + "/" + prefix + "-labels-idx1-ubyte", labels);
  };
  write_split("train", 64);
  write_split("t10k", 32);
  return dir;
}

}  // namespace data
}  // namespace moco
