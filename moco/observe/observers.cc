#include "moco/observe/observers.h"

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace moco {
namespace observe {

absl::Status TensorBoardObserver::OnRunStart(const RunInfo& info) {
  start_step_ = info.start_step;
  if (info.resumed) {
    absl::StatusOr<int64_t> dropped = tfevents::TrimEventFilesAfterStep(info.run_dir,
                                                                        info.start_step);
    if (!dropped.ok()) return dropped.status();
    if (*dropped > 0) {
      LOG(INFO) << info.run_dir << ": dropped " << *dropped << " events after step "
                << info.start_step << " (written after the checkpoint this run resumes from)";
    }
  }
  absl::StatusOr<std::unique_ptr<tfevents::EventFileWriter>> w =
      tfevents::EventFileWriter::Create(info.run_dir);
  if (!w.ok()) return w.status();
  writer_ = *std::move(w);
  return absl::OkStatus();
}

absl::Status TensorBoardObserver::OnStep(const StepStats& s) {
  if (!s.log_row || s.global_step <= start_step_ || writer_ == nullptr) return absl::OkStatus();
  tfevents::Scalars scalars = {{"loss", s.loss},
                               {"top1", s.top1},
                               {"lr", s.lr},
                               {"key_momentum", s.key_momentum},
                               {"images_per_sec", static_cast<float>(s.images_per_sec)},
                               {"data_wait_share", static_cast<float>(s.data_wait_share)}};
  if (s.comm_wait_share.has_value()) {
    scalars.push_back({"comm_wait_share", static_cast<float>(*s.comm_wait_share)});
  }
  if (s.loss_scale.has_value()) {
    scalars.push_back({"loss_scale", *s.loss_scale});
    scalars.push_back({"skipped_steps", static_cast<float>(s.skipped_steps)});
  }
  return writer_->WriteScalars(s.global_step, scalars);
}

absl::Status TensorBoardObserver::OnEpochEnd(const EpochStats& e) {
  if (writer_ == nullptr) return absl::OkStatus();
  tfevents::Scalars scalars;
  if (e.knn_top1.has_value()) scalars.push_back({"knn_top1", static_cast<float>(*e.knn_top1)});
  if (e.random_init_knn_top1.has_value()) {
    scalars.push_back({"knn_random_init_top1", static_cast<float>(*e.random_init_knn_top1)});
  }
  if (e.probe_train_top1.has_value()) {
    scalars.push_back({"probe_train_top1", static_cast<float>(*e.probe_train_top1)});
  }
  if (e.probe_test_top1.has_value()) {
    scalars.push_back({"probe_test_top1", static_cast<float>(*e.probe_test_top1)});
  }
  if (!scalars.empty() && e.global_step > start_step_) {
    absl::Status s = writer_->WriteScalars(e.global_step, scalars);
    if (!s.ok()) return s;
  }
  return writer_->Flush();
}

absl::Status TensorBoardObserver::OnRunEnd(const RunEnd& end) {
  if (writer_ == nullptr) return absl::OkStatus();
  if (end.random_init_knn_top1.has_value()) {
    absl::Status s = writer_->WriteScalars(
        end.global_step, {{"knn_random_init_top1", static_cast<float>(*end.random_init_knn_top1)}});
    if (!s.ok()) return s;
  }
  return writer_->Flush();
}

namespace {

// A report that cannot be written is logged, not returned: it must never stop a training run.
absl::Status WriteReportOrWarn(const std::string& run_dir, const ReportStatus& status) {
  const absl::Status s = WriteReport(run_dir, status);
  if (!s.ok()) LOG(WARNING) << "report.html not updated: " << s;
  return absl::OkStatus();
}

}  // namespace

absl::Status ReportObserver::OnRunStart(const RunInfo& info) {
  run_dir_ = info.run_dir;
  status_.state = info.resumed ? absl::StrCat("running (resumed at step ", info.start_step, ")")
                               : "running";
  status_.total_steps = info.total_steps;
  status_.epochs = info.config.run().epochs();
  status_.epochs_done = info.steps_per_epoch > 0 ? info.start_step / info.steps_per_epoch : 0;
  return WriteReportOrWarn(run_dir_, status_);
}

absl::Status ReportObserver::OnEpochEnd(const EpochStats& e) {
  status_.epochs_done = e.epochs_done;
  status_.elapsed_seconds = e.elapsed_seconds;
  status_.eta_seconds = e.eta_seconds;
  if (e.random_init_knn_top1.has_value()) status_.random_init_knn_top1 = e.random_init_knn_top1;
  return WriteReportOrWarn(run_dir_, status_);
}

absl::Status ReportObserver::OnRunEnd(const RunEnd& end) {
  if (run_dir_.empty()) return absl::OkStatus();
  switch (end.reason) {
    case RunEnd::Reason::kFinished: status_.state = "finished"; break;
    case RunEnd::Reason::kStopped:
      status_.state = absl::StrCat("stopped at step ", end.global_step, " (resume with --resume)");
      break;
    case RunEnd::Reason::kFailed: status_.state = absl::StrCat("failed: ", end.error); break;
  }
  status_.eta_seconds = -1;
  if (end.random_init_knn_top1.has_value()) status_.random_init_knn_top1 = end.random_init_knn_top1;
  return WriteReportOrWarn(run_dir_, status_);
}

absl::StatusOr<std::vector<std::unique_ptr<TrainingObserver>>> CreateRunObservers(
    const RunInfo& info) {
  std::vector<std::unique_ptr<TrainingObserver>> observers;
  if (info.rank != 0) return observers;
  observers.push_back(std::make_unique<TensorBoardObserver>());
  observers.push_back(std::make_unique<ReportObserver>());
  return observers;
}

}  // namespace observe
}  // namespace moco
