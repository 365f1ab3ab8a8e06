// The terminal progress line (moco/run/progress_display.h) and the run's one-line messages (kNN
// monitor, skipped images) as a TrainingObserver.
#ifndef MOCO_OBSERVE_PROGRESS_OBSERVER_H_
#define MOCO_OBSERVE_PROGRESS_OBSERVER_H_

#include <memory>

#include "moco/observe/training_observer.h"
#include "moco/run/progress_display.h"

namespace moco {

class ProgressObserver final : public TrainingObserver {
 public:
  absl::Status OnRunStart(const RunInfo& info) override;
  absl::Status OnStep(const StepStats& step) override;
  absl::Status OnEpochEnd(const EpochStats& epoch) override;
  absl::Status OnRunEnd(const RunEnd& end) override;

 private:
  RunInfo info_;
  std::unique_ptr<ProgressDisplay> display_;
};

}  // namespace moco

#endif  // MOCO_OBSERVE_PROGRESS_OBSERVER_H_
