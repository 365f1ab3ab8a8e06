#include "backends/torch/torch_sgd.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "backends/torch/torch_tensor.h"

namespace moco::torch_backend {

TorchSgd::TorchSgd(TorchEncoder& encoder, const OptimizerConfig& config)
    : momentum_(config.momentum()), weight_decay_(config.weight_decay()) {
  for (const auto& p : encoder.module()->named_parameters()) {
    names_.push_back(p.key());
    params_.push_back(p.value());
  }
  momentum_buffers_.resize(params_.size());
}

absl::Status TorchSgd::Step(float lr) {
  return GuardTorch("SGD::Step", [&]() -> absl::Status {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params_.size(); ++i) {
      torch::Tensor& p = params_[i];
      if (!p.grad().defined()) continue;
      torch::Tensor d = p.grad();
      if (weight_decay_ != 0) d = d.add(p, weight_decay_);
      if (momentum_ != 0) {
        torch::Tensor& buf = momentum_buffers_[i];
        if (!buf.defined()) {
          buf = d.clone();
        } else {
          buf.mul_(momentum_).add_(d);
        }
        d = buf;
      }
      p.add_(d, -lr);
    }
    return absl::OkStatus();
  });
}

NamedArrays TorchSgd::ExportState() const {
  NamedArrays state;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (momentum_buffers_[i].defined()) state[names_[i]] = ToHostArray(momentum_buffers_[i]);
  }
  return state;
}

absl::Status TorchSgd::ImportState(const NamedArrays& state) {
  std::vector<torch::Tensor> buffers(params_.size());
  size_t matched = 0;
  for (size_t i = 0; i < params_.size(); ++i) {
    auto it = state.find(names_[i]);
    if (it == state.end()) continue;
    if (it->second.shape() != params_[i].sizes().vec()) {
      return absl::InvalidArgumentError(
          absl::StrCat("optimizer momentum buffer '", names_[i], "' has the wrong shape"));
    }
    buffers[i] = FromHostArray(it->second, params_[i].device());
    ++matched;
  }
  if (matched != state.size()) {
    for (const auto& [name, array] : state) {
      if (std::find(names_.begin(), names_.end(), name) == names_.end()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "optimizer state holds a momentum buffer '", name,
            "' for a parameter this encoder does not have"));
      }
    }
  }
  momentum_buffers_ = std::move(buffers);
  return absl::OkStatus();
}

}  // namespace moco::torch_backend
