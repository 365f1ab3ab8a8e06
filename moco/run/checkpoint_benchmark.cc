// Times WriteCheckpoint / ReadCheckpoint / SaveCheckpointToRunDir on a checkpoint of a given
// size (float32 arrays of 1M elements each), in a given folder.
//
//   bazel run //moco/run:checkpoint_benchmark -- --megabytes=400 --dir=/tmp
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "gflags/gflags.h"
#include "moco/run/checkpoint.h"

DEFINE_int32(megabytes, 256, "checkpoint size in MiB of float32 data");
DEFINE_string(dir, "/tmp", "folder for the checkpoint files (must exist)");
DEFINE_int32(repeats, 3, "timed repetitions; the best is reported");

namespace {

double Seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

template <typename F>
double Best(F f) {
  double best = 1e300;
  for (int i = 0; i < FLAGS_repeats; ++i) {
    const double t0 = Seconds();
    f();
    best = std::min(best, Seconds() - t0);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  moco::Checkpoint c;
  c.config_text = "run { epochs: 1 }";
  c.backend = "torch";
  constexpr int64_t kElements = 1 << 18;  // 1 MiB of float32
  for (int i = 0; i < FLAGS_megabytes; ++i) {
    moco::HostArray a({kElements});
    for (int64_t j = 0; j < kElements; ++j) a.mutable_data()[j] = static_cast<float>(i * 0.5 + j);
    c.arrays[absl::StrCat("array_", i)] = std::move(a);
  }
  const std::string path = FLAGS_dir + "/checkpoint_benchmark.ckpt";
  const std::string run_dir = FLAGS_dir + "/checkpoint_benchmark_run";
  if (std::system(("mkdir -p '" + run_dir + "'").c_str()) != 0) {
    std::fprintf(stderr, "cannot create %s\n", run_dir.c_str());
    return 1;
  }
  bool ok = true;
  const double write_s = Best([&] { ok = moco::WriteCheckpoint(path, c).ok() && ok; });
  const double read_s = Best([&] { ok = moco::ReadCheckpoint(path).ok() && ok; });
  const double save_s = Best([&] { ok = moco::SaveCheckpointToRunDir(run_dir, c).ok() && ok; });
  std::remove(path.c_str());
  if (std::system(("rm -rf '" + run_dir + "'").c_str()) != 0) ok = false;
  if (!ok) {
    std::fprintf(stderr, "a checkpoint operation failed\n");
    return 1;
  }
  const double mb = FLAGS_megabytes;
  std::printf("%d MiB checkpoint in %s (best of %d):\n", FLAGS_megabytes, FLAGS_dir.c_str(),
              FLAGS_repeats);
  std::printf("  WriteCheckpoint         %.3f s  (%.0f MiB/s, incl. fsync)\n", write_s,
              mb / write_s);
  std::printf("  ReadCheckpoint          %.3f s  (%.0f MiB/s, incl. CRC check)\n", read_s,
              mb / read_s);
  std::printf("  SaveCheckpointToRunDir  %.3f s  (%.0f MiB/s, incl. rotation)\n", save_s,
              mb / save_s);
  return 0;
}
