#include "moco/observe/synthetic_run.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>

#include "moco/core/status_macros.h"
#include "moco/observe/observers.h"
#include "moco/observe/metrics_csv_observer.h"

namespace moco {
namespace observe {

double SyntheticLoss(const SyntheticRun& run, int64_t step) {
  const double wiggle = 0.05 * std::sin(static_cast<double>(step));
  if (!run.learning) return 8.0 + wiggle;
  return 5.0 + 3.0 * std::exp(-static_cast<double>(step) / 25.0) + wiggle;
}

double SyntheticKnn(const SyntheticRun& run, int64_t epochs_done) {
  if (!run.learning) return run.random_init + 0.2;
  return run.random_init + 10.0 * static_cast<double>(epochs_done);
}

absl::Status DriveSyntheticRun(const SyntheticRun& run) {
  std::filesystem::create_directories(run.run_dir);
  RunInfo info;
  info.run_dir = run.run_dir;
  info.config.mutable_run()->set_epochs(run.epochs);
  info.config.mutable_run()->set_run_dir(run.run_dir);
  info.config.mutable_run()->set_log_every_steps(run.log_every);
  info.start_step = run.start_step;
  info.steps_per_epoch = run.steps_per_epoch;
  info.total_steps = int64_t{run.epochs} * run.steps_per_epoch;
  info.resumed = run.start_step > 0;
  std::ofstream(run.run_dir + "/config.pbtxt")
      << "run {\n  epochs: " << run.epochs << "\n  log_every_steps: " << run.log_every
      << "\n  run_dir: \"" << run.run_dir << "\"\n}\n";
  // As the pretraining pipeline registers them: metrics.csv first, then ours.
  std::vector<std::unique_ptr<TrainingObserver>> observers;
  observers.push_back(std::make_unique<MetricsCsvObserver>());
  ASSIGN_OR_RETURN(auto ours, CreateRunObservers(info));
  for (auto& o : ours) observers.push_back(std::move(o));
  for (auto& o : observers) RETURN_IF_ERROR(o->OnRunStart(info));
  int64_t step = run.start_step;
  for (int64_t epoch = step / run.steps_per_epoch; epoch < run.epochs; ++epoch) {
    while (step < (epoch + 1) * run.steps_per_epoch) {
      ++step;
      StepStats s;
      s.global_step = step;
      s.epoch = epoch;
      s.loss = static_cast<float>(SyntheticLoss(run, step));
      s.top1 = static_cast<float>(run.learning ? 1.0 - 0.9 * std::exp(-step / 30.0) : 0.02);
      s.lr = static_cast<float>(0.03 * (1 + std::cos(M_PI * step / info.total_steps)) / 2);
      s.key_momentum = 0.99f;
      s.images_per_sec = 400 + step % 7;
      s.data_wait_share = 0.05;
      const bool epoch_end = step % run.steps_per_epoch == 0;
      const bool stop = run.stop_at > 0 && step == run.stop_at;
      s.log_row = step % run.log_every == 0 || epoch_end || stop;
      s.epoch_end = epoch_end;
      for (auto& o : observers) RETURN_IF_ERROR(o->OnStep(s));
      if (stop) {
        if (run.crash) return absl::OkStatus();  // died: no flush, no RunEnd
        RunEnd end;
        end.reason = RunEnd::Reason::kStopped;
        end.global_step = step;
        for (auto& o : observers) RETURN_IF_ERROR(o->OnRunEnd(end));
        return absl::OkStatus();
      }
      if (epoch_end) {
        EpochStats e;
        e.epochs_done = epoch + 1;
        e.global_step = step;
        e.knn_top1 = SyntheticKnn(run, epoch + 1);
        e.elapsed_seconds = 12.5 * (epoch + 1);
        e.eta_seconds = 12.5 * (run.epochs - epoch - 1);
        for (auto& o : observers) RETURN_IF_ERROR(o->OnEpochEnd(e));
      }
    }
  }
  RunEnd end;
  end.reason = RunEnd::Reason::kFinished;
  end.global_step = step;
  end.knn_top1 = SyntheticKnn(run, run.epochs);
  end.random_init_knn_top1 = run.random_init;
  for (auto& o : observers) RETURN_IF_ERROR(o->OnRunEnd(end));
  return absl::OkStatus();
}

}  // namespace observe
}  // namespace moco
