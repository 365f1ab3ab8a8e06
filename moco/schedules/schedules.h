// Training schedules: the learning rate per step and the key encoder's momentum per step.
//
//   optimizer { lr: 0.03 schedule: COSINE warmup_epochs: 1 }   # with run { epochs: 200 }
//
//   ASSIGN_OR_RETURN(LearningRateSchedule lr_schedule,
//                    LearningRateSchedule::Create(config.optimizer(), config.run().epochs(),
//                                                 steps_per_epoch));
//   float lr = lr_schedule.At(epoch, step_in_epoch);
//   float m = KeyMomentumAt(config.moco(), global_step, total_steps);
#ifndef MOCO_SCHEDULES_SCHEDULES_H_
#define MOCO_SCHEDULES_SCHEDULES_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "moco/config/config.pb.h"

namespace moco {

// The learning rate as the official MoCo code computes it (main_moco.py, adjust_learning_rate),
// with an optional linear warmup on top:
//
//   COSINE:     lr * 0.5 * (1 + cos(pi * epoch / epochs)), constant within an epoch;
//   MULTI_STEP: lr * gamma^(number of milestones <= epoch);
//   CONSTANT:   lr.
//   COSINE_PER_STEP (MoCo v3, per step on the fractional epoch e = epoch + step / steps):
//               lr * e / warmup_epochs while e < warmup_epochs (0 at the first step), then
//               lr * 0.5 * (1 + cos(pi * (e - warmup_epochs) / (epochs - warmup_epochs))).
//
// `epoch` is 0-based (the first epoch is 0). If optimizer.warmup_epochs > 0 the value is then
// multiplied by (global_step + 1) / warmup_steps for global steps < warmup_steps (not
// COSINE_PER_STEP, whose warmup is its own), where
// global_step = epoch * steps_per_epoch + step_in_epoch and
// warmup_steps = round(warmup_epochs * steps_per_epoch); it changes every step. The warmup
// reaches the full schedule value exactly at its last step (global_step = warmup_steps - 1).
// Arithmetic is in double; the result is rounded to float once.
class LearningRateSchedule {
 public:
  // Checks the parts of the config the schedule uses and returns InvalidArgument naming the
  // field (e.g. "optimizer.milestones[1] (100) must be greater than the previous milestone
  // (120)") if one is broken. `epochs` is run.epochs (> 0) and `steps_per_epoch` the optimizer
  // steps in one epoch (> 0).
  static absl::StatusOr<LearningRateSchedule> Create(const OptimizerConfig& config, int epochs,
                                                     int64_t steps_per_epoch);

  // The learning rate of the step `step_in_epoch` (0-based, < steps_per_epoch) of the 0-based
  // `epoch`. Epochs past the end are allowed (cosine keeps following its formula).
  float At(int64_t epoch, int64_t step_in_epoch) const;

  // The number of warmup steps of the multiplicative warmup (0 without it, and for
  // COSINE_PER_STEP).
  int64_t warmup_steps() const { return warmup_steps_; }
  int64_t steps_per_epoch() const { return steps_per_epoch_; }

 private:
  LearningRateSchedule() = default;

  OptimizerConfig::Schedule schedule_ = OptimizerConfig::COSINE;
  double base_lr_ = 0;
  double gamma_ = 1;
  std::vector<int> milestones_;
  int epochs_ = 1;
  int64_t steps_per_epoch_ = 1;
  int64_t warmup_steps_ = 0;
  double warmup_epochs_ = 0;  // COSINE_PER_STEP
};

// The key encoder's momentum m at `global_step` (0-based) of `total_steps` (> 0).
// Without moco.momentum_cosine_schedule it is moco.momentum at every step. With it,
//   m(t) = 1 - (1 - m0) * (cos(pi * t / T) + 1) / 2,   m0 = moco.momentum, T = total_steps,
// which is m0 at t = 0 and rises to 1 at t = T; t is clamped to [0, T] (total_steps <= 0
// gives m0).
float KeyMomentumAt(const MocoConfig& config, int64_t global_step, int64_t total_steps);

}  // namespace moco

#endif  // MOCO_SCHEDULES_SCHEDULES_H_
