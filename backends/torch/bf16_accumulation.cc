#include "backends/torch/bf16_accumulation.h"

#include <vector>

namespace moco::torch_backend {
namespace {

constexpr int64_t kTerms = 1024;

// Every element of `sums` is a sum of kTerms ones: exact in fp32, stuck at 256 in bf16.
bool SumsInFp32(const torch::Tensor& sums) {
  return sums.to(torch::kFloat32).eq(static_cast<float>(kTerms)).all().item<bool>();
}

Bf16Accumulation Probe() {
  torch::NoGradGuard no_grad;
  const auto bf16 = torch::TensorOptions().dtype(torch::kBFloat16);
  Bf16Accumulation a;
  // A GEMM of the size layers run: LibTorch sends a (1, K) x (K, 1) product to a different
  // kernel (a dot product that sums in bf16 even where its GEMMs sum in fp32).
  a.matmul_fp32 =
      SumsInFp32(torch::mm(torch::ones({64, kTerms}, bf16), torch::ones({kTerms, 64}, bf16)));
  // 1024 = 64 channels x 4 x 4 kernel taps, so the convolution sums 1024 ones per output.
  const torch::Tensor x = torch::ones({1, 64, 4, 4}, bf16);
  const torch::Tensor w = torch::ones({1, 64, 4, 4}, bf16);
  a.nchw_conv_fp32 = SumsInFp32(torch::conv2d(x, w));
  a.channels_last_conv_fp32 =
      SumsInFp32(torch::conv2d(x.contiguous(at::MemoryFormat::ChannelsLast),
                               w.contiguous(at::MemoryFormat::ChannelsLast)));
  return a;
}

}  // namespace

const Bf16Accumulation& MeasuredBf16Accumulation(const torch::Device& device) {
  static const Bf16Accumulation kCuda;
  if (device.is_cuda()) return kCuda;
  static const Bf16Accumulation kCpu = Probe();
  return kCpu;
}

std::string Bf16AccumulationWarning(const Bf16Accumulation& measured, bool channels_last) {
  std::vector<std::string> slow;
  if (!measured.matmul_fp32) slow.push_back("linear layers");
  if (channels_last ? !measured.channels_last_conv_fp32 : !measured.nchw_conv_fp32) {
    slow.push_back(channels_last ? "channels-last convolutions" : "NCHW convolutions");
  }
  if (slow.empty()) return "";
  std::string what;
  for (size_t i = 0; i < slow.size(); ++i) what += (i ? " and " : "") + slow[i];
  std::string msg = "backend.precision BF16: on this CPU LibTorch's bf16 " + what +
                    " accumulate in bf16, not fp32 (a sum of 1024 ones gives 256), so their "
                    "error grows with the reduction length (docs/PRECISION.md)";
  if (!channels_last && !measured.nchw_conv_fp32 && measured.channels_last_conv_fp32) {
    msg += "; set backend.channels_last: true for oneDNN's fp32-accumulating convolutions";
  }
  return msg;
}

}  // namespace moco::torch_backend
