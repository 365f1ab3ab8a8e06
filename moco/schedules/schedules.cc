#include "moco/schedules/schedules.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace moco {
namespace {

constexpr double kPi = 3.14159265358979323846;

}  // namespace

absl::StatusOr<LearningRateSchedule> LearningRateSchedule::Create(const OptimizerConfig& config,
                                                                  int epochs,
                                                                  int64_t steps_per_epoch) {
  if (epochs <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("run.epochs (", epochs, ") must be > 0 for the learning-rate schedule"));
  }
  if (steps_per_epoch <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "steps per epoch (", steps_per_epoch, ") must be > 0 for the learning-rate schedule"));
  }
  if (!std::isfinite(config.lr()) || config.lr() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("optimizer.lr (", config.lr(), ") must be finite and >= 0"));
  }
  if (!std::isfinite(config.warmup_epochs()) || config.warmup_epochs() < 0) {
    return absl::InvalidArgumentError(absl::StrCat("optimizer.warmup_epochs (",
                                                   config.warmup_epochs(),
                                                   ") must be finite and >= 0"));
  }
  LearningRateSchedule s;
  s.schedule_ = config.schedule();
  s.base_lr_ = config.lr();
  s.epochs_ = epochs;
  s.steps_per_epoch_ = steps_per_epoch;
  s.warmup_steps_ = static_cast<int64_t>(
      std::llround(static_cast<double>(config.warmup_epochs()) * steps_per_epoch));
  switch (config.schedule()) {
    case OptimizerConfig::COSINE:
    case OptimizerConfig::CONSTANT:
      break;
    case OptimizerConfig::COSINE_PER_STEP:
      s.warmup_epochs_ = config.warmup_epochs();
      if (s.warmup_epochs_ >= epochs) {
        return absl::InvalidArgumentError(
            absl::StrCat("optimizer.warmup_epochs (", config.warmup_epochs(),
                         ") must be less than run.epochs (", epochs, ") for COSINE_PER_STEP"));
      }
      s.warmup_steps_ = 0;  // the warmup is part of the schedule's own formula
      break;
    case OptimizerConfig::MULTI_STEP:
      if (!std::isfinite(config.gamma()) || config.gamma() <= 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("optimizer.gamma (", config.gamma(), ") must be finite and > 0"));
      }
      s.gamma_ = config.gamma();
      for (int i = 0; i < config.milestones_size(); ++i) {
        if (i > 0 && config.milestones(i) <= config.milestones(i - 1)) {
          return absl::InvalidArgumentError(
              absl::StrCat("optimizer.milestones[", i, "] (", config.milestones(i),
                           ") must be greater than the previous milestone (",
                           config.milestones(i - 1), ")"));
        }
        s.milestones_.push_back(config.milestones(i));
      }
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("optimizer.schedule (", static_cast<int>(config.schedule()),
                       ") is not a schedule this build knows"));
  }
  return s;
}

float LearningRateSchedule::At(int64_t epoch, int64_t step_in_epoch) const {
  double lr = base_lr_;
  if (schedule_ == OptimizerConfig::COSINE_PER_STEP) {
    const double e = static_cast<double>(epoch) +
                     static_cast<double>(step_in_epoch) / static_cast<double>(steps_per_epoch_);
    if (e < warmup_epochs_) return static_cast<float>(lr * e / warmup_epochs_);
    const double progress = (e - warmup_epochs_) / (epochs_ - warmup_epochs_);
    return static_cast<float>(lr * 0.5 * (1.0 + std::cos(kPi * progress)));
  }
  switch (schedule_) {
    case OptimizerConfig::COSINE:
      lr *= 0.5 * (1.0 + std::cos(kPi * static_cast<double>(epoch) / epochs_));
      break;
    case OptimizerConfig::MULTI_STEP:
      for (int milestone : milestones_) {
        if (epoch >= milestone) lr *= gamma_;
      }
      break;
    default:  // CONSTANT
      break;
  }
  const int64_t global_step = epoch * steps_per_epoch_ + step_in_epoch;
  if (global_step < warmup_steps_) {
    lr *= static_cast<double>(global_step + 1) / static_cast<double>(warmup_steps_);
  }
  return static_cast<float>(lr);
}

float KeyMomentumAt(const MocoConfig& config, int64_t global_step, int64_t total_steps) {
  const double m0 = config.momentum();
  if (!config.momentum_cosine_schedule() || total_steps <= 0) return static_cast<float>(m0);
  const double t = static_cast<double>(std::clamp<int64_t>(global_step, 0, total_steps));
  const double m = 1.0 - (1.0 - m0) * (std::cos(kPi * t / total_steps) + 1.0) / 2.0;
  return static_cast<float>(m);
}

}  // namespace moco
