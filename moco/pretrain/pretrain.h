// The MoCo pretraining pipeline: config -> data, backend, MoCo steps, kNN monitor, metrics,
// checkpoints; resumable and interruptible. `bazel run //moco/pretrain:pretrain` is its command line.
//
// Run folder (run.run_dir): config.pbtxt (the config used), metrics.csv, checkpoint.ckpt
// (latest, written atomically every run.checkpoint_every_epochs epochs, at the end, and on
// SIGINT/SIGTERM) and checkpoint.prev.ckpt (the one before).
//
// Data parallel: with torchrun's variables (WORLD_SIZE > 1, RANK, MASTER_ADDR, MASTER_PORT) the
// process joins a Gloo process group; run.batch_size is the global batch. Rank 0 alone writes
// the run folder (config, checkpoints, metrics, reports); every rank reads the checkpoint on
// --resume. The checkpoint does not depend on the world size.
#ifndef MOCO_PRETRAIN_PRETRAIN_H_
#define MOCO_PRETRAIN_PRETRAIN_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "moco/config/config.pb.h"

namespace moco {

struct PretrainOptions {
  // The experiment. With `resume`, the checkpoint's own config is used and `config` (when set)
  // must equal it.
  std::optional<ExperimentConfig> config;
  std::string config_source = "config";  // for messages, e.g. the file name
  bool resume = false;
  std::string run_dir_override;  // replaces run.run_dir when not empty
  // Stop as a signal would (checkpoint, clean exit) once this many steps are done in total
  // (0 = never): for jobs with a time slot, and for resume tests.
  int64_t stop_at_step = 0;
  // Compare against a randomly initialized encoder of the same architecture at the end.
  bool random_init_baseline = true;
  // Data parallelism (WORLD_SIZE > 1 in the environment, torchrun's contract): how long the
  // rendezvous and every collective may wait for the other ranks before failing.
  int distributed_timeout_s = 300;
};

struct PretrainSummary {
  int64_t epochs_done = 0;
  int64_t global_step = 0;
  bool stopped_by_signal = false;  // stopped on request (signal or --stop_at_step), resumable
  bool already_finished = false;   // resumed a run that had finished: nothing was trained
  std::optional<double> knn_top1;              // learned encoder, percent, last measurement
  std::optional<double> random_init_knn_top1;  // same classifier, randomly initialized encoder
  std::optional<double> last_loss;  // loss of the last step trained by this process
  int rank = 0;                     // this process's rank in a data-parallel run (0 alone)
};

// A Trainer (trainer.h) with the standard observers: metrics.csv, then the progress line.
absl::StatusOr<PretrainSummary> RunPretraining(const PretrainOptions& options);

}  // namespace moco

#endif  // MOCO_PRETRAIN_PRETRAIN_H_
