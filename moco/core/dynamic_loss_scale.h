// Dynamic loss scaling for FP16 training (Micikevicius et al. 2018, "Mixed Precision
// Training"), with torch.cuda.amp.GradScaler's rule, so a PyTorch user's run and ours move their
// scale identically:
//
//   every step: the loss gradient is multiplied by scale() before the backward, and the
//   parameter gradients by inverse_scale() after it (exact: the scale is a power of two unless
//   the config says otherwise); then Update(all those gradients finite):
//     not finite: the optimizer update is skipped, scale *= backoff_factor, tracker = 0;
//     finite:     tracker += 1; when tracker reaches growth_interval, scale *= growth_factor
//                 (only if that stays finite) and tracker = 0.
//
// The defaults are GradScaler's: 2^16, x2, x0.5, every 2000 finite steps. The scale is a float32
// and every product is rounded to float32, as GradScaler's CUDA kernel does.
//
//   DynamicLossScale scaler(options);
//   ... Backward(grad_q * scaler.scale()) ...; finite = Unscale(grads, scaler.inverse_scale());
//   if (finite) optimizer.Step(lr);
//   scaler.Update(finite);
//
// State (Export / Import, checkpointed by the training methods under "loss_scale/"): "scale",
// "growth_tracker", "skipped_steps", each shape {} (integers held as exact floats, < 2^24).
#ifndef MOCO_CORE_DYNAMIC_LOSS_SCALE_H_
#define MOCO_CORE_DYNAMIC_LOSS_SCALE_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "moco/config/config.pb.h"
#include "moco/core/host_array.h"

namespace moco {

struct LossScaleOptions {
  float init_scale = 65536.0f;  // 2^16
  float growth_factor = 2.0f;
  float backoff_factor = 0.5f;
  int64_t growth_interval = 2000;
};

// The options a config asks for (backend.loss_scaling); FromConfig does not validate
// (moco/validation/config_validator.cc does).
LossScaleOptions LossScaleOptionsFromConfig(const LossScalingConfig& config);

// Whether a run with `backend` scales its loss: backend.loss_scaling.enabled when set, else
// exactly when backend.precision is FP16.
bool LossScalingEnabled(const BackendConfig& backend);

// What is wrong with `options`, one (option name, "init_scale (0) must be finite and > 0")
// pair per bad option; empty when all are valid: init_scale finite and > 0, growth_factor
// finite and > 1, 0 < backoff_factor < 1, 1 <= growth_interval < 2^24. Shared by Create and the
// config validator.
std::vector<std::pair<std::string, std::string>> LossScaleOptionProblems(
    const LossScaleOptions& options);

class DynamicLossScale {
 public:
  // InvalidArgument with the first of LossScaleOptionProblems, if any.
  static absl::StatusOr<DynamicLossScale> Create(const LossScaleOptions& options);

  float scale() const { return scale_; }
  // 1 / scale in float32 (GradScaler's: the double reciprocal rounded to float).
  float inverse_scale() const { return static_cast<float>(1.0 / static_cast<double>(scale_)); }
  int64_t growth_tracker() const { return growth_tracker_; }
  // Steps whose update was skipped for non-finite gradients, over the whole run.
  int64_t skipped_steps() const { return skipped_steps_; }

  // After a step: `gradients_finite` is whether every unscaled gradient was finite (the step's
  // update was then taken; otherwise it was skipped).
  void Update(bool gradients_finite);

  NamedArrays Export() const;
  // Exactly the three names above, shape {}; a finite scale > 0 and integer counters in range.
  // InvalidArgument naming the entry otherwise, and nothing is changed.
  absl::Status Import(const NamedArrays& state);

 private:
  explicit DynamicLossScale(const LossScaleOptions& options)
      : options_(options), scale_(options.init_scale) {}

  LossScaleOptions options_;
  float scale_;
  int64_t growth_tracker_ = 0;
  int64_t skipped_steps_ = 0;
};

}  // namespace moco

#endif  // MOCO_CORE_DYNAMIC_LOSS_SCALE_H_
