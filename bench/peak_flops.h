// The machine's measured matrix ceilings, so benchmarks state their rate as a share of what
// this CPU (or GPU) actually does rather than of a hard-coded number:
//   conv: LibTorch's 3x3, 64 -> 64 channel convolution, stride 1, pad 1, on a 32x64x56x56
//         channels-last input (oneDNN; AMX "brgconv" kernels in bf16 on CPUs that have AMX);
//   gemm: a 2048 x 2048 x 2048 matrix product.
// Forward only, after 2 warmup runs; the best of `repeats` timed runs (the ceiling, not the
// typical rate, on a shared machine).
#ifndef BENCH_PEAK_FLOPS_H_
#define BENCH_PEAK_FLOPS_H_

#include <string>

namespace moco {
namespace bench {

struct PeakFlops {
  double conv_gflop_per_s = 0;
  double gemm_gflop_per_s = 0;
};

// `bf16`: operands in bfloat16 (fp32 accumulation inside the kernels); else fp32. Runs on
// `device` ("cpu", "cuda") with LibTorch's current intra-op thread count.
PeakFlops MeasurePeakFlops(bool bf16, const std::string& device = "cpu", int repeats = 5);

}  // namespace bench
}  // namespace moco

#endif  // BENCH_PEAK_FLOPS_H_
