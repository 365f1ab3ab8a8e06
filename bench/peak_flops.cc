#include "bench/peak_flops.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <functional>

namespace moco {
namespace bench {
namespace {

// Fastest seconds of `repeats` runs of fn, after 2 untimed ones.
double BestSeconds(const std::function<void()>& fn, int repeats, bool cuda) {
  auto sync = [cuda] {
    if (cuda) torch::cuda::synchronize();
  };
  for (int i = 0; i < 2; ++i) fn();
  sync();
  double best = 1e30;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    sync();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
                              .count());
  }
  return best;
}

}  // namespace

PeakFlops MeasurePeakFlops(bool bf16, const std::string& device, int repeats) {
  torch::NoGradGuard no_grad;
  const torch::Device dev(device);
  const torch::TensorOptions options =
      torch::TensorOptions().device(dev).dtype(bf16 ? torch::kBFloat16 : torch::kFloat32);
  PeakFlops peak;
  {
    const int64_t n = 32, c = 64, hw = 56;
    const torch::Tensor x =
        torch::randn({n, c, hw, hw}, options).contiguous(at::MemoryFormat::ChannelsLast);
    const torch::Tensor w =
        torch::randn({c, c, 3, 3}, options).contiguous(at::MemoryFormat::ChannelsLast);
    const double flops = 2.0 * n * c * hw * hw * c * 9;
    const double s = BestSeconds(
        [&] { torch::conv2d(x, w, {}, /*stride=*/1, /*padding=*/1); }, repeats, dev.is_cuda());
    peak.conv_gflop_per_s = flops / s / 1e9;
  }
  {
    const int64_t m = 2048;
    const torch::Tensor a = torch::randn({m, m}, options), b = torch::randn({m, m}, options);
    const double s = BestSeconds([&] { torch::mm(a, b); }, repeats, dev.is_cuda());
    peak.gemm_gflop_per_s = 2.0 * m * m * m / s / 1e9;
  }
  return peak;
}

}  // namespace bench
}  // namespace moco
