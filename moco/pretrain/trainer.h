// The pretraining loop, one short function per phase:
//
//   Create   resolve the run (new or resumed), validate, write config.pbtxt, open the data,
//            build the backend and the training method (moco.method), restore the checkpoint
//   Run      RunEpoch until the last epoch or a stop, then the random-init kNN baseline
//   RunEpoch skip the batches a resumed epoch already trained on, then TrainStep per batch
//   EndOfEpoch  kNN monitor (through eval's MeasureKnn), observers' OnEpochEnd, checkpoint
//   Save / Stop  checkpoint; a stop (signal or --stop_at_step) ends Run with `stopped`
//
// Everything a run reports (metrics.csv, the progress line, TensorBoard, the HTML report) is an
// observer (training_observer.h) called in registration order; the loop itself writes nothing
// but config.pbtxt and the checkpoints.
//
// Data parallel (WORLD_SIZE > 1 in the environment): Create joins a Gloo process group
// (backends/distributed) after validating the config for that world size; ranks with another
// config or another starting point are refused there. Each rank loads its share of every
// global batch, the method synchronizes the step, and a stop (signal, --stop_at_step) is agreed
// by all ranks at the same step. Rank 0 alone writes config.pbtxt and the checkpoints (and
// should be the only one with observers); every rank reads the checkpoint when resuming. The
// kNN monitor runs on every rank (identical results; not sharded yet). run.threads 0 means
// cores / LOCAL_WORLD_SIZE per rank.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<Trainer> trainer, Trainer::Create(options));
//   trainer->AddObserver(std::make_unique<MetricsCsvObserver>());
//   ASSIGN_OR_RETURN(PretrainSummary summary, trainer->Run());
#ifndef MOCO_PRETRAIN_TRAINER_H_
#define MOCO_PRETRAIN_TRAINER_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/batch_loader.h"
#include "data/dataset.h"
#include "data/transform.h"
#include "eval/feature_extractor.h"
#include "moco/config/config.pb.h"
#include "moco/core/backend.h"
#include "moco/core/communicator.h"
#include "moco/core/training_method.h"
#include "moco/pretrain/pretrain.h"
#include "moco/pretrain/run_start.h"
#include "moco/observe/training_observer.h"
#include "moco/pretrain/online_probe.h"
#include "moco/schedules/schedules.h"

namespace moco {

class Trainer {
 public:
  // Everything up to the first step; errors name the config field, file or checkpoint at fault.
  static absl::StatusOr<std::unique_ptr<Trainer>> Create(const PretrainOptions& options);

  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  void AddObserver(std::unique_ptr<TrainingObserver> observer);

  // Trains to the end of run.epochs or to a stop. Observers see OnRunStart first and OnRunEnd
  // last, also when a step or an observer fails (then the error is returned).
  absl::StatusOr<PretrainSummary> Run();

  const RunInfo& run_info() const { return info_; }
  // This process in its data-parallel group (0 of 1 alone).
  int rank() const { return comm_->rank(); }
  int world_size() const { return comm_->world_size(); }

 private:
  struct Data {
    std::shared_ptr<const data::Dataset> train;
    std::shared_ptr<const data::Dataset> test;
    std::shared_ptr<const data::Transform> eval_view;
    std::unique_ptr<data::BatchLoader> loader;
  };
  // Throughput window: steps and loader wait since the last metrics row (restarts each epoch).
  struct Window {
    double start = 0;
    int64_t steps = 0;
    double wait_seconds = 0;
    double comm_blocked_at_start = 0;  // comm_->blocked_seconds() when the window opened
  };

  Trainer(PretrainOptions options, RunStart start);

  // World 1: the local communicator. Otherwise the Gloo group of torchrun's variables, with a
  // rendezvous tag from the config and the starting step.
  absl::Status JoinProcessGroup(int world_size);
  // StopRequested() on any rank (the same answer on every rank; one collective when W > 1).
  absl::StatusOr<bool> StopAgreed();
  absl::Status OpenData();
  absl::Status BuildMethod();
  absl::Status Restore();
  // Fresh runs with model.init_from: the method's encoders (and queue) from that file.
  absl::Status InitFromWeights();
  // Runs the whole loop; Run() wraps it with OnRunStart / OnRunEnd.
  absl::Status TrainEpochs();
  // Trains `epoch` from where the run stands; sets stopped_ when a stop arrives.
  absl::Status RunEpoch(int64_t epoch);
  absl::Status SkipTrainedBatches(int64_t epoch);
  absl::Status TrainStep(const data::HostBatch& batch, int64_t epoch);
  absl::Status EndOfEpoch(int64_t epoch);
  absl::Status Save(int64_t epochs_done);
  absl::Status Stop(int64_t epoch, bool epoch_done, bool saved);
  absl::Status RandomInitBaseline();
  absl::StatusOr<double> KnnTop1(Encoder& encoder);
  eval::ExtractOptions MonitorExtractOptions() const;
  // run.online_probe: its epoch's training top-1 and its test top-1 into `stats`.
  absl::Status MeasureProbe(EpochStats& stats);

  absl::Status NotifyStep(const StepStats& step);
  absl::Status NotifyEpochEnd(const EpochStats& epoch);
  void NotifyRunEnd(RunEnd::Reason reason, const std::string& error);

  PretrainOptions options_;
  RunStart start_;
  const ExperimentConfig& config_;  // start_.config
  RunInfo info_;
  Data data_;
  std::unique_ptr<Communicator> comm_;
  int local_world_size_ = 1;  // processes of this run on this machine (LOCAL_WORLD_SIZE)
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<TrainingMethod> method_;
  std::unique_ptr<OnlineProbe> probe_;  // null unless run.online_probe.enabled
  std::optional<LearningRateSchedule> schedule_;
  std::vector<std::unique_ptr<TrainingObserver>> observers_;

  int64_t global_step_ = 0;
  bool stopped_ = false;
  std::string stop_reason_;  // "signal" or "--stop_at_step"
  Window window_;
  double process_start_ = 0;
  PretrainSummary summary_;
};

}  // namespace moco

#endif  // MOCO_PRETRAIN_TRAINER_H_
