// metrics.csv as a TrainingObserver: one row per logged step (StepStats::log_row), the epoch's
// last row written at OnEpochEnd so it carries the kNN monitor. Each global step appears at most
// once, resumed runs included (the file is trimmed to the checkpoint's step on resume).
#ifndef MOCO_OBSERVE_METRICS_CSV_OBSERVER_H_
#define MOCO_OBSERVE_METRICS_CSV_OBSERVER_H_

#include <optional>

#include "moco/observe/training_observer.h"
#include "moco/run/metrics_log.h"

namespace moco {

class MetricsCsvObserver final : public TrainingObserver {
 public:
  absl::Status OnRunStart(const RunInfo& info) override;
  absl::Status OnStep(const StepStats& step) override;
  absl::Status OnEpochEnd(const EpochStats& epoch) override;

 private:
  std::optional<MetricsLog> log_;
  std::optional<MetricsRow> epoch_end_row_;  // waits for its kNN value
};

}  // namespace moco

#endif  // MOCO_OBSERVE_METRICS_CSV_OBSERVER_H_
