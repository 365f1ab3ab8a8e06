// The //eval:knn pipeline as a library: weighted kNN of the test split against the train split's
// features for each selected encoder (learned, random-init, raw pixels), side by side.
//
//   ASSIGN_OR_RETURN(EvalResults results, RunKnnEval("eval/configs/quickstart.pbtxt"));
#ifndef EVAL_KNN_EVAL_H_
#define EVAL_KNN_EVAL_H_

#include <string>

#include "absl/status/statusor.h"
#include "eval/eval_config.pb.h"

namespace moco {
namespace eval {

// Loads and validates the config, reads the checkpoint, extracts features through the
// evaluation view, classifies (knn.k, knn.temperature), writes "knn_results.pbtxt" into the
// results folder (eval/results_writer.h) and returns what it wrote. Errors name the config
// field, the checkpoint or the data file at fault.
absl::StatusOr<EvalResults> RunKnnEval(const std::string& config_path);

}  // namespace eval
}  // namespace moco

#endif  // EVAL_KNN_EVAL_H_
