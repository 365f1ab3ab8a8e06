// Writes checkpoint_fuzz seeds into the folder given as argv[1]: a small checkpoint made by
// WriteCheckpoint, as a whole file ("file_*": first byte 1) and as a bare payload
// ("payload_*": first byte 0, checkpoint_fuzz.cc frames it).
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

#include "moco/run/checkpoint.h"

namespace {

bool WriteSeed(const std::string& path, char mode, const std::string& data) {
  std::ofstream out(path, std::ios::binary);
  out << mode << data;
  return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_checkpoint_seeds OUT_FOLDER\n");
    return 2;
  }
  const std::string dir = argv[1];
  moco::Checkpoint checkpoint;
  checkpoint.epoch = 2;
  checkpoint.global_step = 14;
  checkpoint.seed = 11;
  checkpoint.config_text = "moco { queue_size: 48 }\nrun { epochs: 4 }\n";
  checkpoint.backend = "torch";
  checkpoint.arrays["query.conv1.weight"] = moco::HostArray({2, 1, 3, 3});
  checkpoint.arrays["query.conv1.weight"].mutable_data()[4] = 0.25f;
  checkpoint.arrays["queue"] = moco::HostArray({4, 3});
  checkpoint.arrays["queue_ptr"] = moco::HostArray({1});
  checkpoint.metadata["rng"] = "1234";
  const std::string path = dir + "/tmp.ckpt";
  if (!moco::WriteCheckpoint(path, checkpoint).ok()) return 1;
  std::ifstream in(path, std::ios::binary);
  const std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::remove(path.c_str());
  const std::string payload = file.substr(20, file.size() - 24);
  if (!WriteSeed(dir + "/file_small", '\1', file) || !WriteSeed(dir + "/payload_small", '\0', payload)) {
    return 1;
  }
  checkpoint.arrays.clear();
  checkpoint.metadata.clear();
  if (!moco::WriteCheckpoint(path, checkpoint).ok()) return 1;
  std::ifstream in2(path, std::ios::binary);
  const std::string empty((std::istreambuf_iterator<char>(in2)), std::istreambuf_iterator<char>());
  std::remove(path.c_str());
  return WriteSeed(dir + "/file_no_arrays", '\1', empty) ? 0 : 1;
}
