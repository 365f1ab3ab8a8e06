// runs/<name>/report.html: one self-contained page (inline SVG and CSS, no scripts) built from
// the run folder's files (run_data.h) plus what only the running process knows (ReportStatus).
// Its first lines are a plain-text summary table (<pre>), so `head report.html` answers "is
// it learning?" as well as a browser does.
//
//   ReportStatus st; st.state = "running"; st.total_steps = 3760;
//   RETURN_IF_ERROR(WriteReport(run_dir, st));   // tmp file + rename: never half-written
#ifndef MOCO_OBSERVE_REPORT_H_
#define MOCO_OBSERVE_REPORT_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "moco/observe/run_data.h"

namespace moco {
namespace observe {

struct ReportStatus {
  std::string state;            // "running", "finished", "stopped", "failed: <why>"; "" = unknown
  int64_t total_steps = 0;      // 0 = unknown
  int64_t epochs = 0;           // run.epochs, 0 = unknown
  int64_t epochs_done = 0;
  double elapsed_seconds = -1;  // this process; < 0 = unknown
  double eta_seconds = -1;
  std::optional<double> random_init_knn_top1;  // overrides the run folder's
};

// The rule behind the report's verdict:
//  - fewer than 4 logged losses: "too early to tell";
//  - the loss is falling when the mean of the last quarter of logged losses is below 99% of
//    the mean of the first quarter;
//  - kNN beats random init when the best kNN monitor top-1 is at least 1 point above the
//    random-init encoder's;
//  - "learning" = loss falling and (kNN beats random init, or neither is measured yet);
//    "not learning" otherwise. `reason` says which parts held, with the numbers.
struct Verdict {
  std::string word;  // "learning", "not learning", "too early to tell"
  std::string reason;
};
Verdict JudgeRun(const RunData& data, std::optional<double> random_init_knn_top1);

std::string RenderReport(const RunData& data, const ReportStatus& status);

// LoadRunData(run_dir) -> RenderReport -> run_dir/report.html, atomically.
absl::Status WriteReport(const std::string& run_dir, const ReportStatus& status);

// Writes `text` to `path` through "<path>.tmp" and a rename.
absl::Status WriteFileAtomically(const std::string& path, const std::string& text);

// "1h 02m 03s".
std::string FormatDuration(double seconds);

}  // namespace observe
}  // namespace moco

#endif  // MOCO_OBSERVE_REPORT_H_
