// Results files of the evaluation pipelines and the side-by-side report.
//
//   EvalResults results;  results.set_tool("knn");  ... add_results() per encoder ...
//   ASSIGN_OR_RETURN(std::string path, WriteEvalResults(ResultsDir(config), results));
//   std::cout << FormatResultsTable(results);
#ifndef EVAL_RESULTS_WRITER_H_
#define EVAL_RESULTS_WRITER_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "eval/eval_config.pb.h"

namespace moco {
namespace eval {

// "<dir>/<tool>_results.pbtxt".
std::string ResultsPath(const std::string& dir, const std::string& tool);

// Writes `results` (text format, with a header comment) to ResultsPath(dir, results.tool()),
// creating `dir` if needed, atomically: a temporary file in `dir`, then rename over the target.
// Never replaces a checkpoint: if the target is results.checkpoint() or an existing file that
// starts with the checkpoint magic "MOCOCKPT", FailedPrecondition naming it and nothing is
// written. Returns the path written. Other errors name the path and the system's reason.
absl::StatusOr<std::string> WriteEvalResults(const std::string& dir, const EvalResults& results);

// Checks before an evaluation that `dir` can take the results file: creates it if needed and
// creates and removes a probe file in it. UnavailableError naming `dir` and the reason.
absl::Status CheckResultsDirWritable(const std::string& dir);

// WriteEvalResults, but on failure prints FormatResultsTable(results) to stdout first, so an
// evaluation's figures are never lost; the error then says they were printed.
absl::StatusOr<std::string> WriteEvalResultsOrPrint(const std::string& dir,
                                                    const EvalResults& results);

// Appends the results to the TensorBoard event files in `dir` (a new
// events.out.tfevents.*.eval file, moco/observe/events/event_file.h) at the checkpoint's global
// step: tags "eval/<tool>/top1/<ENCODER>" and "eval/<tool>/top5/<ENCODER>", in percent.
absl::Status AppendEvalResultsToEvents(const std::string& dir, const EvalResults& results);

// A plain-text table: one row per encoder with top-1 / top-5 in percent, feature dimension,
// image counts, time (and the final training loss for the linear probe), under a title line
// naming the tool, its settings and the checkpoint.
std::string FormatResultsTable(const EvalResults& results);

}  // namespace eval
}  // namespace moco

#endif  // EVAL_RESULTS_WRITER_H_
