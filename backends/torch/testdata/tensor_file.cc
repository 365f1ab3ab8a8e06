#include "backends/torch/testdata/tensor_file.h"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace moco::torch_backend {

std::string TestDataPath(const std::string& name) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const std::string rel = "backends/torch/testdata/" + name;
  return srcdir == nullptr ? rel : std::string(srcdir) + "/moco_cpp/" + rel;
}

std::map<std::string, torch::Tensor> ReadTensorFile(const std::string& path) {
  std::map<std::string, torch::Tensor> out;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  size_t pos = 0;
  auto take = [&](void* dst, size_t n) {
    if (pos + n > bytes.size()) throw std::runtime_error(path + ": truncated");
    std::memcpy(dst, bytes.data() + pos, n);
    pos += n;
  };
  char magic[8];
  take(magic, 8);
  if (std::string(magic, 8) != "MOCOTNS1") throw std::runtime_error(path + ": not a MOCOTNS1 file");
  uint32_t count;
  take(&count, 4);
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t name_len;
    take(&name_len, 4);
    std::string name(name_len, '\0');
    take(name.data(), name_len);
    uint8_t dtype;
    uint32_t ndim;
    take(&dtype, 1);
    take(&ndim, 4);
    std::vector<int64_t> shape(ndim);
    for (auto& d : shape) take(&d, 8);
    const torch::ScalarType type = dtype == 0   ? torch::kFloat
                                   : dtype == 1 ? torch::kHalf
                                                : torch::kLong;
    torch::Tensor t = torch::empty(shape, torch::dtype(type));
    take(t.data_ptr(), t.nbytes());
    out[name] = type == torch::kHalf ? t.to(torch::kFloat) : t;
  }
  if (pos != bytes.size()) throw std::runtime_error(path + ": trailing bytes");
  return out;
}

}  // namespace moco::torch_backend
