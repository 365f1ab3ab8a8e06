// The run-folder observers of a pretraining run (moco/observe/training_observer.h):
//   TensorBoardObserver  events.out.tfevents.<time>.<host>: the logged rows' scalars (loss,
//                        top1, lr, key_momentum, images_per_sec, data_wait_share), knn_top1
//                        per epoch, knn_random_init_top1; flushed at every epoch end and at
//                        the run's end. Resumed: the files are first trimmed to the
//                        checkpoint's step (event_file.h) and only steps > start_step are
//                        written, so no step appears twice across files.
//   ReportObserver       report.html (report.h), rewritten atomically at the start, at every
//                        epoch end and at the run's end, from the run folder's files. A
//                        report that cannot be written is a logged warning, never an error
//                        that would stop training.
//
// The Trainer registers them after the metrics.csv observer (the report reads metrics.csv and
// the event files at epoch end, so both must be written first):
//   ASSIGN_OR_RETURN(auto observers, observe::CreateRunObservers(info));
//   for (auto& o : observers) trainer.AddObserver(std::move(o));
#ifndef MOCO_OBSERVE_OBSERVERS_H_
#define MOCO_OBSERVE_OBSERVERS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "moco/observe/events/event_file.h"
#include "moco/observe/report.h"
#include "moco/observe/training_observer.h"

namespace moco {
namespace observe {

class TensorBoardObserver final : public TrainingObserver {
 public:
  absl::Status OnRunStart(const RunInfo& info) override;
  absl::Status OnStep(const StepStats& step) override;
  absl::Status OnEpochEnd(const EpochStats& epoch) override;
  absl::Status OnRunEnd(const RunEnd& end) override;
  // The file this process writes (empty before OnRunStart).
  std::string path() const { return writer_ ? writer_->path() : ""; }

 private:
  std::unique_ptr<tfevents::EventFileWriter> writer_;
  int64_t start_step_ = 0;
};

class ReportObserver final : public TrainingObserver {
 public:
  absl::Status OnRunStart(const RunInfo& info) override;
  absl::Status OnEpochEnd(const EpochStats& epoch) override;
  absl::Status OnRunEnd(const RunEnd& end) override;

 private:
  std::string run_dir_;
  ReportStatus status_;
};

// [TensorBoardObserver, ReportObserver] for rank 0, nothing for other ranks. The observers
// take the run folder from RunInfo in OnRunStart.
absl::StatusOr<std::vector<std::unique_ptr<TrainingObserver>>> CreateRunObservers(
    const RunInfo& info);

}  // namespace observe
}  // namespace moco

#endif  // MOCO_OBSERVE_OBSERVERS_H_
