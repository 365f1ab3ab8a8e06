#include "backends/torch/torch_lars.h"

#include <utility>

#include "backends/torch/torch_tensor.h"

namespace moco::torch_backend {
namespace {

OptimizerStateLayout LarsLayout(const torch::OrderedDict<std::string, torch::Tensor>& params) {
  std::vector<std::string> names;
  std::vector<std::vector<int64_t>> shapes;
  for (const auto& p : params) {
    names.push_back(p.key());
    shapes.push_back(p.value().sizes().vec());
  }
  return OptimizerStateLayout(std::move(names), std::move(shapes), {{""}});
}

}  // namespace

TorchLars::TorchLars(const torch::OrderedDict<std::string, torch::Tensor>& params,
                     const OptimizerConfig& config)
    : params_(params.values()),
      layout_(LarsLayout(params)),
      mu_(params_.size()),
      momentum_(config.momentum()),
      weight_decay_(config.weight_decay()),
      eta_(config.lars_trust_coefficient()) {}

absl::Status TorchLars::Step(float lr) {
  return GuardTorch("LARS::Step", [&]() -> absl::Status {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params_.size(); ++i) {
      torch::Tensor& p = params_[i];
      if (!p.grad().defined()) continue;
      torch::Tensor d = p.grad();
      if (p.dim() > 1) {
        d = d.add(p, weight_decay_);
        const torch::Tensor p_norm = torch::norm(p);
        const torch::Tensor d_norm = torch::norm(d);
        const torch::Tensor one = torch::ones_like(p_norm);
        const torch::Tensor q = torch::where(
            p_norm > 0, torch::where(d_norm > 0, p_norm.mul(eta_).div(d_norm), one), one);
        d = d.mul(q);
      }
      if (!mu_[i].defined()) mu_[i] = torch::zeros_like(p);
      mu_[i].mul_(momentum_).add_(d);
      p.add_(mu_[i], -static_cast<double>(lr));
    }
    return absl::OkStatus();
  });
}

NamedArrays TorchLars::ExportState() const {
  NamedArrays state;
  for (size_t i = 0; i < mu_.size(); ++i) {
    if (mu_[i].defined()) state[layout_.EntryName(i, 0)] = ToHostArray(mu_[i]);
  }
  return state;
}

absl::Status TorchLars::ImportState(const NamedArrays& state) {
  absl::StatusOr<std::vector<std::vector<const HostArray*>>> matched = layout_.Match(state);
  if (!matched.ok()) return matched.status();
  return GuardTorch("LARS::ImportState", [&]() -> absl::Status {
    std::vector<torch::Tensor> mu(params_.size());
    for (size_t i = 0; i < mu.size(); ++i) {
      const HostArray* entry = (*matched)[i][0];
      if (entry != nullptr) mu[i] = FromHostArray(*entry, params_[i].device());
    }
    mu_ = std::move(mu);
    return absl::OkStatus();
  });
}

}  // namespace moco::torch_backend
