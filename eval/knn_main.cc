// Weighted kNN evaluation of a MoCo checkpoint (k = 200, T = 0.1 by default) next to random-init and raw-pixel baselines.
//
//   bazel run //eval:knn -- --config=eval/configs/quickstart.pbtxt
//
// Prints top-1 / top-5 per encoder side by side and writes knn_results.pbtxt into the
// config's results_dir (default: the checkpoint's folder). Exits non-zero on any error.
// Links the "torch" and "eigen" backends (backend.name picks one).
#include <iostream>

#include "absl/status/status.h"
#include "eval/knn_eval.h"
#include "eval/results_writer.h"
#include "gflags/gflags.h"
#include "moco/run/pipeline_main.h"
#include "moco/core/status_macros.h"

DEFINE_string(config, "eval/configs/quickstart.pbtxt",
              "Evaluation config (moco.eval.EvalConfig text proto, see eval/eval_config.proto).");

DEFINE_int32(dist_timeout_s, 300,
             "Under torchrun's variables (WORLD_SIZE > 1): seconds the rendezvous and each "
             "collective wait for the other ranks before failing.");

namespace moco {
namespace eval {
namespace {

absl::Status Run() {
  ASSIGN_OR_RETURN(EvalResults results, RunKnnEval(ResolveWorkspacePath(FLAGS_config), FLAGS_dist_timeout_s));
  std::cout << FormatResultsTable(results) << std::flush;
  return absl::OkStatus();
}

}  // namespace
}  // namespace eval
}  // namespace moco

int main(int argc, char** argv) {
  return moco::PipelineMain(argc, argv, "Weighted kNN evaluation of a MoCo checkpoint (k = 200, T = 0.1 by default) next to random-init and raw-pixel baselines.", &moco::eval::Run);
}
