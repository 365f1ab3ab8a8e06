#include "moco/observe/metrics_csv_observer.h"

#include "moco/core/status_macros.h"

namespace moco {

absl::Status MetricsCsvObserver::OnRunStart(const RunInfo& info) {
  ASSIGN_OR_RETURN(MetricsLog log,
                   MetricsLog::Open(MetricsPath(info.run_dir),
                                    info.resumed ? std::optional<int64_t>(info.start_step)
                                                 : std::nullopt));
  log_.emplace(std::move(log));
  return absl::OkStatus();
}

absl::Status MetricsCsvObserver::OnStep(const StepStats& step) {
  if (!step.log_row) return absl::OkStatus();
  MetricsRow row;
  row.step = step.global_step;
  row.epoch = step.epoch;
  row.loss = step.loss;
  row.top1 = step.top1;
  row.lr = step.lr;
  row.key_momentum = step.key_momentum;
  row.images_per_sec = step.images_per_sec;
  row.data_wait_share = step.data_wait_share;
  if (step.epoch_end) {
    epoch_end_row_ = row;
    return absl::OkStatus();
  }
  return log_->Append(row);
}

absl::Status MetricsCsvObserver::OnEpochEnd(const EpochStats& epoch) {
  if (!epoch_end_row_.has_value()) return absl::OkStatus();
  MetricsRow row = *epoch_end_row_;
  epoch_end_row_.reset();
  row.knn_top1 = epoch.knn_top1;
  row.probe_train_top1 = epoch.probe_train_top1;
  row.probe_test_top1 = epoch.probe_test_top1;
  return log_->Append(row);
}

}  // namespace moco
