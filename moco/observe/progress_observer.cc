#include "moco/observe/progress_observer.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace moco {

absl::Status ProgressObserver::OnRunStart(const RunInfo& info) {
  info_ = info;
  ProgressDisplay::Options options;
  options.log_every_steps = info.config.run().log_every_steps();
  display_ = std::make_unique<ProgressDisplay>(options, info.config.run().epochs(),
                                               info.steps_per_epoch, info.start_step);
  return absl::OkStatus();
}

absl::Status ProgressObserver::OnStep(const StepStats& step) {
  display_->Update(step.global_step, step.loss, step.lr, step.images_per_sec);
  // A few skips at the start of an FP16 run are the scale finding its level; each is said,
  // up to kSkipsShown, after which TensorBoard's "skipped_steps" keeps the count.
  constexpr int64_t kSkipsShown = 10;
  if (step.skipped_update && step.loss_scale.has_value() && step.skipped_steps <= kSkipsShown) {
    display_->Message(absl::StrFormat(
        "step %d: a gradient overflowed at loss scale %g; its update was skipped and the scale "
        "backed off (backend.loss_scaling; %d skipped so far%s)",
        step.global_step, *step.loss_scale, step.skipped_steps,
        step.skipped_steps == kSkipsShown ? ", further skips are counted in TensorBoard only"
                                          : ""));
  }
  return absl::OkStatus();
}

absl::Status ProgressObserver::OnEpochEnd(const EpochStats& epoch) {
  const RunConfig& run = info_.config.run();
  if (epoch.skipped_corrupt_images > 0) {
    display_->Message(absl::StrCat("epoch ", epoch.epochs_done, ": skipped ",
                                   epoch.skipped_corrupt_images,
                                   " corrupt images (data.on_corrupt_image = SKIP)"));
  }
  if (epoch.knn_top1.has_value()) {
    display_->Message(absl::StrFormat("epoch %d/%d: kNN top-1 %.2f%% (k=%d, T=%g)",
                                      epoch.epochs_done, run.epochs(), *epoch.knn_top1,
                                      run.knn_k(), run.knn_temperature()));
  }
  return absl::OkStatus();
}

absl::Status ProgressObserver::OnRunEnd(const RunEnd& end) {
  if (display_ != nullptr) display_->Finish();
  return absl::OkStatus();
}

}  // namespace moco
