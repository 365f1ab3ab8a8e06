// MoCo pretraining from the command line.
//
//   bazel run //moco/pretrain:pretrain                                   # the Fashion-MNIST quickstart
//   bazel run //moco/pretrain:pretrain -- --config=configs/moco_cifar10.pbtxt
//   bazel run //moco/pretrain:pretrain -- --config=configs/quickstart.pbtxt --resume
//
// Ctrl-C (or SIGTERM) finishes the current step, writes a checkpoint and exits with code 75
// (kExitStoppedResumable); --resume continues from it with the same losses as an uninterrupted
// run.
#include <cstdio>

#include "absl/strings/str_format.h"
#include "gflags/gflags.h"
#include "moco/config/config_io.h"
#include "moco/run/pipeline_main.h"
#include "moco/pretrain/pretrain.h"
#include "moco/core/status_macros.h"

DEFINE_string(config, "configs/quickstart.pbtxt",
              "Experiment config (text proto, see moco/config/config.proto).");
DEFINE_bool(resume, false,
            "Continue the run in the config's run.run_dir (or --run_dir) from its latest "
            "checkpoint, with the checkpoint's config (with --run_dir, no config file is read).");
DEFINE_string(run_dir, "", "Overrides run.run_dir of the config.");
DEFINE_int64(stop_at_step, 0,
             "Checkpoint and exit once this many steps are done in total (0 = run to the end).");
DEFINE_bool(random_init_baseline, true,
            "At the end, also report kNN top-1 of a randomly initialized encoder.");

namespace moco {
namespace {

// The options from the flags. With --resume and no --config the checkpoint's config is the
// run's, so no config file is read when --run_dir names the run (the default config is read
// only to find its run folder).
absl::StatusOr<PretrainOptions> OptionsFromFlags() {
  PretrainOptions options;
  options.resume = FLAGS_resume;
  options.run_dir_override = FLAGS_run_dir;
  options.random_init_baseline = FLAGS_random_init_baseline;
  options.stop_at_step = FLAGS_stop_at_step;
  const bool config_given = !gflags::GetCommandLineFlagInfoOrDie("config").is_default;
  if (FLAGS_resume && !config_given && !FLAGS_run_dir.empty()) return options;
  FLAGS_config = ResolveWorkspacePath(FLAGS_config);  // `bazel run` from a subfolder
  ASSIGN_OR_RETURN(ExperimentConfig config, LoadExperimentConfig(FLAGS_config));
  options.config_source = FLAGS_config;
  if (FLAGS_resume && !config_given) {
    options.run_dir_override = config.run().run_dir();
  } else {
    options.config = config;
  }
  return options;
}

void PrintSummary(const PretrainSummary& summary) {
  if (summary.already_finished) {
    std::printf("This run had already finished (%ld epochs, %ld steps); nothing to do.\n",
                static_cast<long>(summary.epochs_done), static_cast<long>(summary.global_step));
    return;
  }
  std::printf("Pretraining done: %ld epochs, %ld steps", static_cast<long>(summary.epochs_done),
              static_cast<long>(summary.global_step));
  if (summary.last_loss.has_value()) std::printf(", final loss %.4f", *summary.last_loss);
  std::printf("\n");
  if (summary.knn_top1.has_value()) {
    std::printf("kNN top-1 (backbone features, test split): learned encoder %.2f%%",
                *summary.knn_top1);
    if (summary.random_init_knn_top1.has_value()) {
      std::printf("  |  randomly initialized encoder %.2f%%", *summary.random_init_knn_top1);
    }
    std::printf("\n");
  }
}

absl::StatusOr<int> Run() {
  ASSIGN_OR_RETURN(PretrainOptions options, OptionsFromFlags());
  ASSIGN_OR_RETURN(PretrainSummary summary, RunPretraining(options));
  if (summary.stopped_by_signal) {
    std::printf("Stopped after step %ld; resume with --resume (exit code %d).\n",
                static_cast<long>(summary.global_step), kExitStoppedResumable);
    return kExitStoppedResumable;
  }
  PrintSummary(summary);
  return 0;
}

}  // namespace
}  // namespace moco

int main(int argc, char** argv) {
  return moco::PipelineMainWithExitCode(
      argc, argv,
      "MoCo pretraining. See moco/config/config.proto for the config. Exit codes: 0 finished, "
      "1 error, 75 stopped early (signal or --stop_at_step) with a checkpoint: continue with "
      "--resume.",
      &moco::Run);
}
