// metrics.csv in a run folder: one row per logged training step, appended and flushed as it is
// written, trimmed on resume so that the file always describes the run being continued.
//
//   step,epoch,loss,top1,lr,key_momentum,images_per_sec,data_wait_share,knn_top1,probe_train_top1,probe_test_top1
//   50,0,8.31234074,0.0625,0.0299999993,0.99000001,412.5,0.031,,,
//   ...
//   4690,9,5.10240555,0.40625,0.000739200227,0.99000001,417.3,0.028,71.25,68.2,70.1
//
// A wave-1 file (header "step,epoch,loss,lr,images_per_sec,knn_top1") is upgraded on resume:
// its rows keep their values, with empty cells for the columns it did not have.
//
//   ASSIGN_OR_RETURN(MetricsLog log, MetricsLog::Open(MetricsPath(run_dir),
//                                                    resuming ? std::optional(ckpt.global_step)
//                                                             : std::nullopt));
//   MetricsRow row;
//   row.step = 50; row.epoch = 0; row.loss = loss; row.lr = lr; row.images_per_sec = 412.5;
//   RETURN_IF_ERROR(log.Append(row));
//
// New run vs resume: a new run (resume_step == nullopt) truncates any existing file and writes
// the header. It does not refuse an existing file: the pipeline starts a new run only in a new
// or empty run_dir (it refuses a run_dir holding a checkpoint unless --resume is given), so a
// metrics.csv there is a leftover of a run that never checkpointed. A resumed run keeps the
// rows with step <= resume_step (the rows the checkpoint's run had written when it was saved)
// and drops the later ones, which an interrupted run wrote after its last checkpoint and which
// the resumed run will write again.
#ifndef MOCO_RUN_METRICS_LOG_H_
#define MOCO_RUN_METRICS_LOG_H_

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace moco {

// The header line of metrics.csv (without the newline).
inline constexpr char kMetricsHeader[] =
    "step,epoch,loss,top1,lr,key_momentum,images_per_sec,data_wait_share,knn_top1,"
    "probe_train_top1,probe_test_top1";
// The header of wave-1 runs, still accepted on resume.
inline constexpr char kMetricsHeaderV1[] = "step,epoch,loss,lr,images_per_sec,knn_top1";

// One row of metrics.csv.
struct MetricsRow {
  int64_t step = 0;   // optimizer steps completed when the row was written (global, >= 0)
  int64_t epoch = 0;  // the epoch the step belongs to, numbered as the pipeline numbers it
  double loss = 0;    // written with 9 significant digits: a float loss round-trips exactly
  double top1 = 0;    // contrastive accuracy of the step, a share in [0, 1]; likewise
  double lr = 0;      // likewise
  double key_momentum = 0;         // likewise
  double images_per_sec = 0;       // mean over the steps since the previous row; one decimal
  double data_wait_share = 0;      // share of that window spent waiting for batches; 3 decimals
  std::optional<double> knn_top1;  // kNN monitor top-1 (percent); empty cell when not measured
  // run.online_probe at epoch ends: training and test top-1 (percent); empty cells otherwise.
  std::optional<double> probe_train_top1;
  std::optional<double> probe_test_top1;
};

// `run_dir`/metrics.csv.
std::string MetricsPath(const std::string& run_dir);

// The CSV line for `row`, without the newline, e.g.
// "50,0,8.31234074,0.0625,0.0299999993,0.99000001,412.5,0.031,".
std::string FormatMetricsRow(const MetricsRow& row);

// An open metrics.csv that rows are appended to. Movable, not copyable; closes on destruction.
class MetricsLog {
 public:
  // Opens `path` for a new run (resume_step == nullopt: the file is created or truncated and
  // gets the header) or for a run resumed at global step *resume_step (rows with step >
  // resume_step are dropped, and a last line cut short by a crash is dropped too; the file is
  // rewritten atomically). Resuming without a file starts a new one with a warning. Errors
  // name the file: an unexpected header or an unparsable row (with its line number) is
  // FailedPrecondition; I/O problems are Unknown with the system's message.
  static absl::StatusOr<MetricsLog> Open(const std::string& path,
                                         std::optional<int64_t> resume_step);

  MetricsLog(MetricsLog&&) = default;
  MetricsLog& operator=(MetricsLog&&) = default;

  // Appends one row and flushes it to the operating system.
  absl::Status Append(const MetricsRow& row);

  const std::string& path() const { return path_; }

 private:
  struct FileCloser {
    void operator()(FILE* f) const {
      if (f != nullptr) std::fclose(f);
    }
  };

  MetricsLog(std::string path, FILE* file) : path_(std::move(path)), file_(file) {}

  std::string path_;
  std::unique_ptr<FILE, FileCloser> file_;
};

}  // namespace moco

#endif  // MOCO_RUN_METRICS_LOG_H_
