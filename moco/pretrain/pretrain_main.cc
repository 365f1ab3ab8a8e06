// MoCo pretraining from the command line.
//
//   bazel run //moco/pretrain:pretrain                                   # the Fashion-MNIST quickstart
//   bazel run //moco/pretrain:pretrain -- --config=configs/moco_cifar10.pbtxt
//   bazel run //moco/pretrain:pretrain -- --config=configs/quickstart.pbtxt --resume
//
// Ctrl-C (or SIGTERM) finishes the current step, writes a checkpoint and exits with code 75
// (kExitStoppedResumable); --resume continues from it with the same losses as an uninterrupted
// run.
//
// Data parallel: `--nproc_per_node=N` starts N ranks on this machine (moco/run/local_launcher.h)
// and supervises them; under torchrun, srun or a Kubernetes job start one process per rank with
// torchrun's variables (WORLD_SIZE, RANK, MASTER_ADDR, MASTER_PORT, LOCAL_*) and leave
// --nproc_per_node at 1. run.batch_size is the global batch either way.
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "absl/strings/str_format.h"
#include "gflags/gflags.h"
#include "moco/config/config_io.h"
#include "moco/run/local_launcher.h"
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
DEFINE_int32(dist_timeout_s, 300,
             "Data parallel (WORLD_SIZE > 1): seconds the rendezvous and each collective wait for "
             "the other ranks before failing.");

DEFINE_int32(nproc_per_node, 1,
             "Data parallel on this machine: start this many ranks (processes) and supervise "
             "them; run.batch_size is split over them. Leave at 1 under torchrun or srun.");
DEFINE_int32(master_port, 0,
             "With --nproc_per_node > 1: the rendezvous port on 127.0.0.1 (0 = a free one).");

namespace moco {
namespace {

// --nproc_per_node > 1 in a process no launcher started: become the launcher and return the
// ranks' exit code. In a rank (or alone): std::nullopt, after checking that the world the
// process was started in agrees with the flags.
absl::StatusOr<std::optional<int>> LaunchIfAsked() {
  const char* world = std::getenv("WORLD_SIZE");
  if (StartedByLocalLauncher()) {
    if (world == nullptr || std::atoi(world) != FLAGS_nproc_per_node) {
      return absl::FailedPreconditionError(absl::StrCat(
          "WORLD_SIZE (", world == nullptr ? "unset" : world,
          ") differs from the launcher's --nproc_per_node (", FLAGS_nproc_per_node, ")"));
    }
    return std::optional<int>();
  }
  if (FLAGS_nproc_per_node <= 1) return std::optional<int>();
  if (world != nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--nproc_per_node=", FLAGS_nproc_per_node, " starts its own ranks, but WORLD_SIZE is "
        "already set (", world, "): this process was started by another launcher (torchrun, "
        "srun?); use one launcher: drop --nproc_per_node or unset WORLD_SIZE"));
  }
  LaunchOptions launch;
  launch.nproc = FLAGS_nproc_per_node;
  launch.master_port = FLAGS_master_port;
  launch.argv = gflags::GetArgvs();
  launch.argv[0] = "/proc/self/exe";
  ASSIGN_OR_RETURN(LaunchResult result, LaunchLocalRanks(launch));
  std::fprintf(stderr, "launcher: %s\n", result.message.c_str());
  return std::optional<int>(result.exit_code);
}

// The options from the flags. With --resume and no --config the checkpoint's config is the
// run's, so no config file is read when --run_dir names the run (the default config is read
// only to find its run folder).
absl::StatusOr<PretrainOptions> OptionsFromFlags() {
  PretrainOptions options;
  options.resume = FLAGS_resume;
  options.run_dir_override = FLAGS_run_dir;
  options.random_init_baseline = FLAGS_random_init_baseline;
  options.stop_at_step = FLAGS_stop_at_step;
  options.distributed_timeout_s = FLAGS_dist_timeout_s;
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
  ASSIGN_OR_RETURN(std::optional<int> launched, LaunchIfAsked());
  if (launched.has_value()) return *launched;
  ASSIGN_OR_RETURN(PretrainOptions options, OptionsFromFlags());
  ASSIGN_OR_RETURN(PretrainSummary summary, RunPretraining(options));
  if (summary.rank != 0) return summary.stopped_by_signal ? kExitStoppedResumable : 0;
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
