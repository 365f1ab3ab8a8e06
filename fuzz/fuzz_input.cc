#include "fuzz/fuzz_input.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

namespace moco {
namespace fuzz {

const std::string& ScratchDir() {
  static const std::string* dir = [] {
    const char* base = std::getenv("TEST_TMPDIR");
    if (base == nullptr) base = std::getenv("TMPDIR");
    if (base == nullptr) base = "/tmp";
    std::string tmpl = std::string(base) + "/moco_fuzz.XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      std::perror(("fuzz: mkdtemp " + tmpl).c_str());
      std::abort();
    }
    static std::string made = tmpl;
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(made, ignored);
    });
    return new std::string(tmpl);
  }();
  return *dir;
}

std::string WriteScratchFile(const std::string& name, const std::string& bytes) {
  const std::string path = ScratchDir() + "/" + name;
  std::error_code error;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), error);
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size() ||
      std::fclose(f) != 0) {
    std::perror(("fuzz: cannot write " + path).c_str());
    std::abort();
  }
  return path;
}

TwoFiles SplitTwoFiles(const uint8_t* data, size_t size) {
  TwoFiles files;
  if (size < 2) return files;
  const size_t first = std::min<size_t>(data[0] | (size_t{data[1]} << 8), size - 2);
  files.first.assign(reinterpret_cast<const char*>(data) + 2, first);
  files.second.assign(reinterpret_cast<const char*>(data) + 2 + first, size - 2 - first);
  return files;
}

void Report(const absl::Status& status) {
  static const bool verbose = std::getenv("FUZZ_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "fuzz: %s\n", status.ToString().c_str());
}

std::string JoinTwoFiles(const std::string& first, const std::string& second) {
  const size_t n = std::min<size_t>(first.size(), 0xffff);
  std::string out;
  out.push_back(static_cast<char>(n & 0xff));
  out.push_back(static_cast<char>(n >> 8));
  return out + first.substr(0, n) + second;
}

}  // namespace fuzz
}  // namespace moco
