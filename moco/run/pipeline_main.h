// The shared main() of every pipeline binary (pretrain, check_config, knn, linear_probe,
// benchmarks): flags, logging to stderr, `bazel run` working directory, allocator settings,
// and a Status -> exit code boundary.
//
//   int main(int argc, char** argv) {
//     return moco::PipelineMain(argc, argv, "MoCo pretraining.", &moco::Run);
//   }
#ifndef MOCO_RUN_PIPELINE_MAIN_H_
#define MOCO_RUN_PIPELINE_MAIN_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace moco {

// Parses gflags, logs to stderr, changes to BUILD_WORKING_DIRECTORY when run by `bazel run`
// (so relative paths mean what the user typed), keeps large buffers in the heap instead of
// mmap/munmap-ing them every step (glibc's default costs a step ~1.4x at batch 256 on this
// machine class), then calls `run`. Returns 0, or 1 after logging the error.
int PipelineMain(int argc, char** argv, const std::string& usage, absl::Status (*run)());

// The same, for a pipeline with more outcomes than success and failure: `run` returns the exit
// code (e.g. kExitStoppedResumable); an error still logs and exits 1.
int PipelineMainWithExitCode(int argc, char** argv, const std::string& usage,
                             absl::StatusOr<int> (*run)());

// Exit code of a run that stopped early on request (SIGINT, SIGTERM, --stop_at_step) after
// writing a checkpoint: it can be continued with --resume. EX_TEMPFAIL of sysexits.h, which
// schedulers (e.g. Slurm requeue scripts, Kubernetes restart policies) can tell from 0 and 1.
inline constexpr int kExitStoppedResumable = 75;

// `path` if it is absolute or readable from the working directory; otherwise, under
// `bazel run`, the same relative path in the workspace (BUILD_WORKSPACE_DIRECTORY) if it is
// readable there; otherwise `path` unchanged.
std::string ResolveWorkspacePath(const std::string& path);

}  // namespace moco

#endif  // MOCO_RUN_PIPELINE_MAIN_H_
