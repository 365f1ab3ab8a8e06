// A training method's dynamic loss scaling (backend.loss_scaling; moco/core/dynamic_loss_scale.h),
// disabled unless the config turns it on (by default: backend.precision FP16). Disabled, every
// call is the identity, so the step is bit for bit the step without it.
//
//   ASSIGN_OR_RETURN(LossScaling scaling, LossScaling::FromConfig(config.backend()));
//   ASSIGN_OR_RETURN(TensorPtr g, scaling.ScaleLossGradient(backend, loss.grad_q));
//   RETURN_IF_ERROR(query.Backward(*g));            // every backward of the step
//   RETURN_IF_ERROR(gradient_sync.Finish());        // data parallel: gradients averaged first
//   ASSIGN_OR_RETURN(bool step, scaling.UnscaleAndUpdate(query));
//   if (step) RETURN_IF_ERROR(optimizer.Step(lr));
//
// Data parallel: the check runs on the averaged gradients, identical on every rank (an inf or
// nan of any rank survives the average), so all ranks skip the same steps and keep the same
// scale without a collective of their own.
#ifndef MOCO_METHODS_LOSS_SCALING_H_
#define MOCO_METHODS_LOSS_SCALING_H_

#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "moco/config/config.pb.h"
#include "moco/core/backend.h"
#include "moco/core/dynamic_loss_scale.h"
#include "moco/core/encoder.h"
#include "moco/core/host_array.h"
#include "moco/core/tensor.h"
#include "moco/core/training_method.h"

namespace moco {

class LossScaling {
 public:
  LossScaling() = default;  // disabled
  // InvalidArgument naming the backend.loss_scaling field for a bad option.
  static absl::StatusOr<LossScaling> FromConfig(const BackendConfig& backend);
  static absl::StatusOr<LossScaling> Enabled(const LossScaleOptions& options);

  bool enabled() const { return scale_.has_value(); }

  // grad * scale; `grad` itself when disabled.
  absl::StatusOr<TensorPtr> ScaleLossGradient(Backend& backend, const TensorPtr& grad) const;

  // After the step's last backward (and gradient average): divides `encoder`'s gradients by the
  // scale, updates the scale and returns whether the optimizer update may run (false: a
  // gradient is inf or nan, the update is skipped). True when disabled.
  absl::StatusOr<bool> UnscaleAndUpdate(Encoder& encoder);

  // The scale the step just taken used, and whether it skipped its update (enabled only).
  void Report(MethodStepResult& result) const;

  // "loss_scale/scale", "loss_scale/growth_tracker", "loss_scale/skipped_steps" when enabled;
  // nothing otherwise.
  void ExportTo(NamedArrays& arrays) const;
  // Enabled: exactly those entries must be present (errors name them); disabled: none may be.
  absl::Status ImportFrom(const NamedArrays& arrays);

  static constexpr char kPrefix[] = "loss_scale/";

 private:
  std::optional<DynamicLossScale> scale_;
  float last_scale_ = 0;
  bool last_skipped_ = false;
};

}  // namespace moco

#endif  // MOCO_METHODS_LOSS_SCALING_H_
