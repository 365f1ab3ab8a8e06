#include "moco/methods/loss_scaling.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "moco/core/status_macros.h"
#include "moco/methods/state_prefix.h"

namespace moco {

absl::StatusOr<LossScaling> LossScaling::FromConfig(const BackendConfig& backend) {
  if (!LossScalingEnabled(backend)) return LossScaling();
  absl::StatusOr<LossScaling> scaling =
      Enabled(LossScaleOptionsFromConfig(backend.loss_scaling()));
  if (!scaling.ok()) return AnnotateStatus(scaling.status(), "backend.loss_scaling");
  return scaling;
}

absl::StatusOr<LossScaling> LossScaling::Enabled(const LossScaleOptions& options) {
  ASSIGN_OR_RETURN(DynamicLossScale scale, DynamicLossScale::Create(options));
  LossScaling scaling;
  scaling.scale_.emplace(scale);
  return scaling;
}

absl::StatusOr<TensorPtr> LossScaling::ScaleLossGradient(Backend& backend,
                                                         const TensorPtr& grad) const {
  if (!enabled()) return grad;
  return backend.Scale(*grad, scale_->scale());
}

absl::StatusOr<bool> LossScaling::UnscaleAndUpdate(Encoder& encoder) {
  if (!enabled()) return true;
  last_scale_ = scale_->scale();
  ASSIGN_OR_RETURN(const bool finite, encoder.UnscaleGradients(scale_->inverse_scale()));
  scale_->Update(finite);
  last_skipped_ = !finite;
  return finite;
}

void LossScaling::Report(MethodStepResult& result) const {
  if (!enabled()) return;
  result.loss_scale = last_scale_;
  result.skipped_update = last_skipped_;
  result.skipped_steps = scale_->skipped_steps();
}

void LossScaling::ExportTo(NamedArrays& arrays) const {
  if (enabled()) AddWithPrefix(scale_->Export(), kPrefix, arrays);
}

absl::Status LossScaling::ImportFrom(const NamedArrays& arrays) {
  const NamedArrays mine = SelectPrefix(arrays, kPrefix);
  if (!enabled()) {
    if (mine.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected array '", kPrefix, mine.begin()->first,
                     "' (the checkpoint scaled its loss; this config's backend.loss_scaling is "
                     "off)"));
  }
  return AnnotateStatus(scale_->Import(mine), "loss scaling (loss_scale/)");
}

}  // namespace moco
