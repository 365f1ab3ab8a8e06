// The measured fp32 and bf16 convolution and GEMM ceilings of this machine (bench/peak_flops.h),
// the denominators of every step benchmark's pct_of_peak.
//
//   bazel run //bench:peak_benchmark -- --threads=2
//
// Output, one line per precision:
//   PEAK device=cpu threads=2 precision=fp32 conv_gflop_per_s=... gemm_gflop_per_s=...
#include <torch/torch.h>

#include <cstdio>

#include "bench/peak_flops.h"
#include "gflags/gflags.h"

DEFINE_int32(threads, 0, "intra-op threads (0: LibTorch's default)");
DEFINE_string(device, "cpu", "cpu or cuda");
DEFINE_int32(repeats, 5, "timed runs per kernel (the best is reported)");

int main(int argc, char** argv) {
  gflags::SetUsageMessage("Measured matrix ceilings. See the file comment.");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (FLAGS_threads > 0) at::set_num_threads(FLAGS_threads);
  for (const bool bf16 : {false, true}) {
    const moco::bench::PeakFlops p = moco::bench::MeasurePeakFlops(bf16, FLAGS_device, FLAGS_repeats);
    std::printf("PEAK device=%s threads=%d precision=%s conv_gflop_per_s=%.1f gemm_gflop_per_s=%.1f\n",
                FLAGS_device.c_str(), at::get_num_threads(), bf16 ? "bf16" : "fp32",
                p.conv_gflop_per_s, p.gemm_gflop_per_s);
    std::fflush(stdout);
  }
  return 0;
}
