// Weighted kNN evaluation of a MoCo checkpoint (k = 200, T = 0.1 by default) next to random-init and raw-pixel baselines.
//
//   bazel run //eval:knn -- --config=eval/configs/quickstart.pbtxt
//
// Prints top-1 / top-5 per encoder side by side and writes knn_results.pbtxt into the
// config's results_dir (default: the checkpoint's folder). Exits non-zero on any error.
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "absl/status/status.h"
#include "eval/knn_eval.h"
#include "eval/results_writer.h"
#include "gflags/gflags.h"
#include "glog/logging.h"
#include "moco/status_macros.h"

DEFINE_string(config, "eval/configs/quickstart.pbtxt", "Evaluation config (moco.eval.EvalConfig text proto).");

namespace moco {
namespace eval {
namespace {

absl::Status Run() {
  ASSIGN_OR_RETURN(EvalResults results, RunKnnEval(FLAGS_config));
  std::cout << FormatResultsTable(results) << std::flush;
  return absl::OkStatus();
}

}  // namespace
}  // namespace eval
}  // namespace moco

int main(int argc, char** argv) {
  gflags::SetUsageMessage("Weighted kNN evaluation of a MoCo checkpoint (k = 200, T = 0.1 by default) next to random-init and raw-pixel baselines.");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  if (const char* wd = std::getenv("BUILD_WORKING_DIRECTORY")) {
    if (chdir(wd) != 0) LOG(WARNING) << "cannot chdir to " << wd;
  }
  const absl::Status status = moco::eval::Run();
  if (!status.ok()) {
    LOG(ERROR) << status.message();
    return 1;
  }
  return 0;
}
