#include "backends/eigen/eigen_lars.h"

#include <utility>

#include "backends/eigen/lars.h"

namespace moco {
namespace eigen_backend {

EigenLars::EigenLars(ParameterSource params, const OptimizerConfig& config)
    : params_(std::move(params)),
      layout_(StateLayoutOf(params_(), {{""}})),
      momentum_(config.momentum()),
      weight_decay_(config.weight_decay()),
      eta_(config.lars_trust_coefficient()),
      mu_(layout_.num_params()) {}

absl::Status EigenLars::Step(float lr) {
  std::vector<StateRef<float>> params = params_();
  absl::Status same = CheckSameParameters(params, layout_, "EigenLars::Step");
  if (!same.ok()) return same;
  for (size_t i = 0; i < params.size(); ++i) {
    std::vector<float>& mu = mu_[i];
    if (mu.empty()) mu.assign(static_cast<size_t>(params[i].size), 0.0f);
    LarsUpdate(params[i].value, params[i].grad, mu.data(), params[i].size,
               /*adapt=*/params[i].shape.size() > 1, lr, momentum_, weight_decay_, eta_);
  }
  return absl::OkStatus();
}

NamedArrays EigenLars::ExportState() const {
  NamedArrays state;
  for (size_t i = 0; i < mu_.size(); ++i) {
    if (mu_[i].empty()) continue;
    state[layout_.EntryName(i, 0)] = HostArray(layout_.EntryShape(i, 0), mu_[i]);
  }
  return state;
}

absl::Status EigenLars::ImportState(const NamedArrays& state) {
  absl::StatusOr<std::vector<std::vector<const HostArray*>>> matched = layout_.Match(state);
  if (!matched.ok()) return matched.status();
  std::vector<std::vector<float>> mu(layout_.num_params());
  for (size_t i = 0; i < mu.size(); ++i) {
    if ((*matched)[i][0] != nullptr) mu[i] = (*matched)[i][0]->data();
  }
  mu_ = std::move(mu);
  return absl::OkStatus();
}

}  // namespace eigen_backend
}  // namespace moco
