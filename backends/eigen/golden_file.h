// Reads the MOCOTNS1 tensor lists of backends/torch/testdata (make_param_names.py describes the
// format) into doubles, for the Eigen backend's golden tests. Test-only: gtest expectations
// report a malformed file.
#ifndef BACKENDS_EIGEN_GOLDEN_FILE_H_
#define BACKENDS_EIGEN_GOLDEN_FILE_H_

#include <cmath>
#include <cstdint>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "backends/eigen/blob.h"
#include "gtest/gtest.h"

namespace moco {
namespace eigen_backend {

struct GoldenTensor {
  std::vector<int64_t> shape;
  std::vector<double> data;
};

inline float HalfToFloat(uint16_t h) {
  const uint32_t sign = (h >> 15) & 1, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  float v;
  if (exp == 0) {
    v = std::ldexp(static_cast<float>(mant), -24);
  } else if (exp == 31) {
    v = mant ? NAN : INFINITY;
  } else {
    v = std::ldexp(static_cast<float>(mant | 0x400), static_cast<int>(exp) - 25);
  }
  return sign ? -v : v;
}

// Reads the MOCOTNS1 tensor list written by backends/torch/testdata/make_param_names.py.
inline std::map<std::string, GoldenTensor> ReadGolden(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  char magic[8];
  in.read(magic, 8);
  EXPECT_EQ(std::string(magic, 8), "MOCOTNS1");
  auto u32 = [&] {
    uint32_t v;
    in.read(reinterpret_cast<char*>(&v), 4);
    return v;
  };
  std::map<std::string, GoldenTensor> out;
  const uint32_t count = u32();
  for (uint32_t i = 0; i < count && in.good(); ++i) {
    std::string name(u32(), '\0');
    in.read(&name[0], static_cast<std::streamsize>(name.size()));
    uint8_t dtype;
    in.read(reinterpret_cast<char*>(&dtype), 1);
    GoldenTensor t;
    t.shape.resize(u32());
    in.read(reinterpret_cast<char*>(t.shape.data()),
            static_cast<std::streamsize>(8 * t.shape.size()));
    const int64_t n = Blob<double>::NumElements(t.shape);
    for (int64_t j = 0; j < n; ++j) {
      if (dtype == 0) {
        float v;
        in.read(reinterpret_cast<char*>(&v), 4);
        t.data.push_back(v);
      } else if (dtype == 1) {
        uint16_t v;
        in.read(reinterpret_cast<char*>(&v), 2);
        t.data.push_back(HalfToFloat(v));
      } else {
        int64_t v;
        in.read(reinterpret_cast<char*>(&v), 8);
        t.data.push_back(static_cast<double>(v));
      }
    }
    out[name] = std::move(t);
  }
  EXPECT_EQ(out.size(), count);
  return out;
}

}  // namespace eigen_backend
}  // namespace moco

#endif  // BACKENDS_EIGEN_GOLDEN_FILE_H_
