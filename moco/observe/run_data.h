// Everything a run folder says about a run, read back from its files, so that the report can
// be rebuilt at any time (after a resume, from another process, by compare_runs):
//   metrics.csv       per logged step (columns by header name; each becomes a series)
//   events.out.tfevents.*  scalars metrics.csv lacks (top1, key_momentum, data_wait_share,
//                     knn_random_init_top1, eval/...) and the wall-time span
//   config.pbtxt      the config text
//   *_results.pbtxt   the evaluation tools' results (eval/results_writer.h)
// A series from metrics.csv wins over the same tag in the event files (they hold the same
// values; the CSV predates the event files in older runs).
#ifndef MOCO_OBSERVE_RUN_DATA_H_
#define MOCO_OBSERVE_RUN_DATA_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "eval/eval_config.pb.h"

namespace moco {
namespace observe {

struct Series {
  std::vector<double> steps;
  std::vector<double> values;
  bool empty() const { return steps.empty(); }
};

struct RunData {
  std::string run_dir;
  std::string config_text;             // config.pbtxt, empty when absent
  std::map<std::string, Series> series;  // tag -> points in step order
  std::optional<double> random_init_knn_top1;  // percent
  std::vector<eval::EvalResults> eval_results;
  double first_wall_time = 0;  // Unix seconds over all event files (0: no events)
  double last_wall_time = 0;
  std::vector<std::string> warnings;  // unreadable pieces, shown in the report

  const Series* Find(const std::string& tag) const;
};

// Reads `run_dir`. Missing files are fine (an empty series); only an unreadable run_dir or a
// metrics.csv without a "step" column is an error. Damaged event or results files become
// warnings, not errors: a report must still come out.
absl::StatusOr<RunData> LoadRunData(const std::string& run_dir);

// Parses metrics.csv text into series (empty cells skipped). `name` for messages.
absl::StatusOr<std::map<std::string, Series>> ParseMetricsCsv(const std::string& text,
                                                              const std::string& name);

}  // namespace observe
}  // namespace moco

#endif  // MOCO_OBSERVE_RUN_DATA_H_
