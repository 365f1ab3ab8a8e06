#include "backends/eigen/eigen_adamw.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "backends/eigen/adamw.h"

namespace moco {
namespace eigen_backend {
namespace {

enum Slot { kExpAvg = 0, kExpAvgSq = 1, kStep = 2 };

}  // namespace

EigenAdamW::EigenAdamW(ParameterSource params, const OptimizerConfig& config)
    : params_(std::move(params)),
      layout_(StateLayoutOf(params_(), {{".exp_avg"}, {".exp_avg_sq"}, {".step", true}})),
      beta1_(config.adam_beta1()),
      beta2_(config.adam_beta2()),
      eps_(config.adam_eps()),
      weight_decay_(config.weight_decay()),
      state_(layout_.num_params()) {}

absl::Status EigenAdamW::Step(float lr) {
  std::vector<StateRef<float>> params = params_();
  absl::Status same = CheckSameParameters(params, layout_, "EigenAdamW::Step");
  if (!same.ok()) return same;
  for (size_t i = 0; i < params.size(); ++i) {
    if (state_[i].step >= kMaxExactStepCount) {
      return absl::FailedPreconditionError(absl::StrCat(
          "AdamW: parameter '", layout_.param_name(i), "' would pass 2^24 steps, which its ",
          "float32 step count cannot hold exactly"));
    }
  }
  for (size_t i = 0; i < params.size(); ++i) {
    Slots& s = state_[i];
    if (s.step == 0) {
      s.exp_avg.assign(static_cast<size_t>(params[i].size), 0.0f);
      s.exp_avg_sq.assign(static_cast<size_t>(params[i].size), 0.0f);
    }
    ++s.step;
    AdamWUpdate(params[i].value, params[i].grad, s.exp_avg.data(), s.exp_avg_sq.data(),
                params[i].size, s.step, static_cast<double>(lr), beta1_, beta2_, eps_,
                weight_decay_);
  }
  return absl::OkStatus();
}

NamedArrays EigenAdamW::ExportState() const {
  NamedArrays state;
  for (size_t i = 0; i < state_.size(); ++i) {
    const Slots& s = state_[i];
    if (s.step == 0) continue;
    state[layout_.EntryName(i, kExpAvg)] = HostArray(layout_.EntryShape(i, kExpAvg), s.exp_avg);
    state[layout_.EntryName(i, kExpAvgSq)] =
        HostArray(layout_.EntryShape(i, kExpAvgSq), s.exp_avg_sq);
    state[layout_.EntryName(i, kStep)] =
        HostArray(layout_.EntryShape(i, kStep), {static_cast<float>(s.step)});
  }
  return state;
}

absl::Status EigenAdamW::ImportState(const NamedArrays& state) {
  absl::StatusOr<std::vector<std::vector<const HostArray*>>> matched = layout_.Match(state);
  if (!matched.ok()) return matched.status();
  std::vector<Slots> slots(layout_.num_params());
  for (size_t i = 0; i < slots.size(); ++i) {
    const std::vector<const HostArray*>& m = (*matched)[i];
    if (m[kStep] == nullptr) continue;
    absl::StatusOr<int64_t> step = StepCountFromArray(*m[kStep], layout_.EntryName(i, kStep));
    if (!step.ok()) return step.status();
    slots[i].step = *step;
    slots[i].exp_avg = m[kExpAvg]->data();
    slots[i].exp_avg_sq = m[kExpAvgSq]->data();
  }
  state_ = std::move(slots);
  return absl::OkStatus();
}

}  // namespace eigen_backend
}  // namespace moco
