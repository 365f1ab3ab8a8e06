// Observers hang off the pretraining Trainer (moco/pretrain/trainer.h) and see a run as it
// happens: metrics.csv, the progress line, TensorBoard event files and the HTML report are each
// one observer. The Trainer calls them in registration order on its own thread; an observer
// error stops the run like a failed step (the last checkpoint is kept).
//
//   class CountingObserver final : public TrainingObserver {
//     absl::Status OnStep(const StepStats& s) override { ++steps_; return absl::OkStatus(); }
//     int steps_ = 0;
//   };
//   trainer.AddObserver(std::make_unique<CountingObserver>());
#ifndef MOCO_OBSERVE_TRAINING_OBSERVER_H_
#define MOCO_OBSERVE_TRAINING_OBSERVER_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "moco/config/config.pb.h"

namespace moco {

// Once per process start, before the first step.
struct RunInfo {
  std::string run_dir;
  ExperimentConfig config;      // as validated, run.run_dir resolved
  int64_t start_step = 0;       // global steps already done (the checkpoint's, when resumed)
  int64_t steps_per_epoch = 0;
  int64_t total_steps = 0;      // epochs * steps_per_epoch
  bool resumed = false;
  // Data-parallel rank of this process (0 when not distributed); file-writing observers
  // (events, report) are created for rank 0 only.
  int rank = 0;
};

// After every optimizer step.
struct StepStats {
  int64_t global_step = 0;   // steps completed, this one included (1-based)
  int64_t epoch = 0;         // 0-based epoch the step belongs to
  float loss = 0;            // the optimized loss (sum of both terms when symmetric)
  float top1 = 0;            // contrastive accuracy: share of queries whose positive scored highest
  float lr = 0;
  float key_momentum = 0;
  // Means over the steps since the previous logged row (log_row below), so the logged value
  // describes the window it closes.
  double images_per_sec = 0;
  double data_wait_share = 0;  // share of that window's wall time spent waiting for batches
  // Data parallel only: share of that window's wall time this rank spent blocked in
  // collectives (communication not hidden behind compute, plus waiting for slower ranks).
  std::optional<double> comm_wait_share;
  // Loss scaling only (backend.loss_scaling): this step's scale, whether its update was skipped
  // (an inf or nan gradient), and the run's skipped updates so far.
  std::optional<float> loss_scale;
  bool skipped_update = false;
  int64_t skipped_steps = 0;
  // True on the steps that make a metrics.csv row: every run.log_every_steps steps, the last
  // step of an epoch and the step a stop happens at. Each global step is a logged row at most
  // once in a run, resumed runs included.
  bool log_row = false;
  // True on an epoch's last step: its EpochStats (with the kNN monitor) follow at once, so a
  // row-writing observer writes that row in OnEpochEnd.
  bool epoch_end = false;
};

// After an epoch's last step, its kNN monitor (if due) and before its checkpoint.
struct EpochStats {
  int64_t epochs_done = 0;          // 1-based: the epoch just finished
  int64_t global_step = 0;
  std::optional<double> knn_top1;   // percent, when the monitor ran this epoch
  int64_t skipped_corrupt_images = 0;  // data.on_corrupt_image = SKIP: images skipped this epoch
  double elapsed_seconds = 0;       // wall time of this process so far
  double eta_seconds = 0;           // estimated time to the end of the run
  // The random-init kNN baseline, when the Trainer has measured it already (e.g. before the
  // first step): the report then draws its line from the first epoch on.
  std::optional<double> random_init_knn_top1;
  // run.online_probe: top-1 (percent) on this epoch's training batches (each scored before its
  // update; empty when the epoch had none in this process) and on the test split.
  std::optional<double> probe_train_top1;
  std::optional<double> probe_test_top1;
};

// Once at the end of the process: finished, stopped (signal / --stop_at_step) or failed.
struct RunEnd {
  enum class Reason { kFinished, kStopped, kFailed };
  Reason reason = Reason::kFinished;
  int64_t global_step = 0;
  std::optional<double> knn_top1;              // learned encoder, last measurement
  std::optional<double> random_init_knn_top1;  // baseline, when measured
  std::string error;                           // kFailed: the error message
};

class TrainingObserver {
 public:
  virtual ~TrainingObserver() = default;
  virtual absl::Status OnRunStart(const RunInfo& info) { return absl::OkStatus(); }
  virtual absl::Status OnStep(const StepStats& step) { return absl::OkStatus(); }
  virtual absl::Status OnEpochEnd(const EpochStats& epoch) { return absl::OkStatus(); }
  // Also called on failure (best effort: its own error is logged, not returned to the user).
  virtual absl::Status OnRunEnd(const RunEnd& end) { return absl::OkStatus(); }
};

}  // namespace moco

#endif  // MOCO_OBSERVE_TRAINING_OBSERVER_H_
