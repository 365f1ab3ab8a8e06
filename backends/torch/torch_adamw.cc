#include "backends/torch/torch_adamw.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "backends/torch/torch_tensor.h"

namespace moco::torch_backend {
namespace {

enum Slot { kExpAvg = 0, kExpAvgSq = 1, kStep = 2 };

OptimizerStateLayout AdamWLayout(const torch::OrderedDict<std::string, torch::Tensor>& params) {
  std::vector<std::string> names;
  std::vector<std::vector<int64_t>> shapes;
  for (const auto& p : params) {
    names.push_back(p.key());
    shapes.push_back(p.value().sizes().vec());
  }
  return OptimizerStateLayout(std::move(names), std::move(shapes),
                              {{".exp_avg"}, {".exp_avg_sq"}, {".step", true}});
}

}  // namespace

TorchAdamW::TorchAdamW(const torch::OrderedDict<std::string, torch::Tensor>& params,
                       const OptimizerConfig& config)
    : params_(params.values()),
      layout_(AdamWLayout(params)),
      state_(params_.size()),
      beta1_(config.adam_beta1()),
      beta2_(config.adam_beta2()),
      eps_(config.adam_eps()),
      weight_decay_(config.weight_decay()) {}

absl::Status TorchAdamW::Step(float lr_float) {
  for (size_t i = 0; i < params_.size(); ++i) {
    if (state_[i].step >= kMaxExactStepCount && params_[i].grad().defined()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "AdamW: parameter '", layout_.param_name(i), "' would pass 2^24 steps, which its ",
          "float32 step count cannot hold exactly"));
    }
  }
  const double lr = lr_float;
  return GuardTorch("AdamW::Step", [&]() -> absl::Status {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params_.size(); ++i) {
      torch::Tensor& p = params_[i];
      if (!p.grad().defined()) continue;
      const torch::Tensor& g = p.grad();
      Slots& s = state_[i];
      if (s.step == 0) {
        s.exp_avg = torch::zeros_like(p);
        s.exp_avg_sq = torch::zeros_like(p);
      }
      ++s.step;
      // torch/optim/adamw.py, _single_tensor_adamw (amsgrad, maximize, capturable off).
      p.mul_(1 - lr * weight_decay_);
      s.exp_avg.mul_(beta1_).add_(g, 1 - beta1_);
      s.exp_avg_sq.mul_(beta2_).addcmul_(g, g, 1 - beta2_);
      const double t = static_cast<double>(s.step);
      const double bias_correction1 = 1 - std::pow(beta1_, t);
      const double bias_correction2 = 1 - std::pow(beta2_, t);
      const double step_size = lr / bias_correction1;
      const double bias_correction2_sqrt = std::sqrt(bias_correction2);
      const torch::Tensor denom = (s.exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps_);
      p.addcdiv_(s.exp_avg, denom, -step_size);
    }
    return absl::OkStatus();
  });
}

NamedArrays TorchAdamW::ExportState() const {
  NamedArrays state;
  for (size_t i = 0; i < state_.size(); ++i) {
    const Slots& s = state_[i];
    if (s.step == 0) continue;
    state[layout_.EntryName(i, kExpAvg)] = ToHostArray(s.exp_avg);
    state[layout_.EntryName(i, kExpAvgSq)] = ToHostArray(s.exp_avg_sq);
    state[layout_.EntryName(i, kStep)] =
        HostArray(layout_.EntryShape(i, kStep), {static_cast<float>(s.step)});
  }
  return state;
}

absl::Status TorchAdamW::ImportState(const NamedArrays& state) {
  absl::StatusOr<std::vector<std::vector<const HostArray*>>> matched = layout_.Match(state);
  if (!matched.ok()) return matched.status();
  std::vector<Slots> slots(params_.size());
  for (size_t i = 0; i < slots.size(); ++i) {
    const HostArray* step = (*matched)[i][kStep];
    if (step == nullptr) continue;
    absl::StatusOr<int64_t> t = StepCountFromArray(*step, layout_.EntryName(i, kStep));
    if (!t.ok()) return t.status();
    slots[i].step = *t;
  }
  return GuardTorch("AdamW::ImportState", [&]() -> absl::Status {
    for (size_t i = 0; i < slots.size(); ++i) {
      if (slots[i].step == 0) continue;
      const torch::Device device = params_[i].device();
      slots[i].exp_avg = FromHostArray(*(*matched)[i][kExpAvg], device);
      slots[i].exp_avg_sq = FromHostArray(*(*matched)[i][kExpAvgSq], device);
    }
    state_ = std::move(slots);
    return absl::OkStatus();
  });
}

}  // namespace moco::torch_backend
