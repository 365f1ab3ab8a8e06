#include "backends/torch/torch_rank_average.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "backends/torch/torch_tensor.h"
#include "moco/core/status_macros.h"

namespace moco::torch_backend {
namespace {

std::vector<torch::Tensor> Selected(TorchEncoder& encoder, RankAveraged what) {
  std::vector<torch::Tensor> out;
  if (what == RankAveraged::kGradients) {
    for (const torch::Tensor& p : encoder.module()->parameters()) {
      if (p.grad().defined()) out.push_back(p.grad());
    }
    return out;
  }
  for (const auto& item : encoder.module()->named_buffers()) {
    if (absl::EndsWith(item.key(), "running_mean") || absl::EndsWith(item.key(), "running_var")) {
      out.push_back(item.value());
    }
  }
  return out;
}

}  // namespace

absl::Status AverageTorchEncoderAcrossRanks(TorchEncoder& encoder, RankAveraged what,
                                            Communicator& communicator) {
  if (communicator.world_size() == 1) return absl::OkStatus();
  return GuardTorch("AverageAcrossRanks", [&]() -> absl::Status {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> tensors = Selected(encoder, what);
    if (tensors.empty()) return absl::OkStatus();
    std::vector<torch::Tensor> flat;
    flat.reserve(tensors.size());
    for (const torch::Tensor& t : tensors) flat.push_back(t.reshape({-1}).to(torch::kFloat32));
    torch::Tensor bucket = torch::cat(flat).contiguous();
    TensorPtr wrapped = Wrap(bucket);
    RETURN_IF_ERROR(communicator.AllReduceAverage(*wrapped));
    int64_t offset = 0;
    for (torch::Tensor& t : tensors) {
      const int64_t n = t.numel();
      t.copy_(bucket.narrow(0, offset, n).view(t.sizes()));
      offset += n;
    }
    return absl::OkStatus();
  });
}

}  // namespace moco::torch_backend
