#include "moco/run/metrics_log.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "glog/logging.h"

namespace moco {
namespace {

std::string ErrnoText(int err) { return std::strerror(err); }

// Replaces `path` with `contents` through a temporary file and a rename, so that a crash
// leaves either the old or the new file.
absl::Status ReplaceFile(const std::string& path, const std::string& contents) {
  const std::string temp = absl::StrCat(path, ".tmp");
  FILE* f = std::fopen(temp.c_str(), "wb");
  if (f == nullptr) {
    return absl::UnknownError(absl::StrCat("cannot rewrite metrics file ", path, ": cannot create ",
                                           temp, ": ", ErrnoText(errno)));
  }
  bool ok = std::fwrite(contents.data(), 1, contents.size(), f) == contents.size();
  ok = std::fflush(f) == 0 && ok;
  ok = ::fsync(fileno(f)) == 0 && ok;
  const int err = errno;
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(temp.c_str(), path.c_str()) != 0) {
    const int e = ok ? errno : err;
    std::remove(temp.c_str());
    return absl::UnknownError(
        absl::StrCat("cannot rewrite metrics file ", path, ": ", ErrnoText(e)));
  }
  return absl::OkStatus();
}

// A wave-1 row "step,epoch,loss,lr,images_per_sec,knn_top1" in today's columns, with empty
// cells for top1, key_momentum, data_wait_share and the probe columns. A row with another cell
// count is kept as it is (the caller has already checked that it starts with a step).
std::string UpgradeWave1Row(const std::string& line) {
  std::vector<std::string> c = absl::StrSplit(line, ',');
  if (c.size() != 6) return line;
  return absl::StrJoin({c[0], c[1], c[2], std::string(), c[3], std::string(), c[4],
                        std::string(), c[5], std::string(), std::string()},
                       ",");
}

// The kept part of an existing metrics file for a resume at `resume_step`.
absl::StatusOr<std::string> TrimForResume(const std::string& path, const std::string& text,
                                          int64_t resume_step) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  // StrSplit gives a last empty piece when the text ends with '\n'; anything else in the last
  // piece is a row cut short by a crash.
  const std::string tail = lines.back();
  lines.pop_back();
  if (!tail.empty()) {
    LOG(WARNING) << path << ": dropping an incomplete last line (" << tail.size()
                 << " bytes) written by an interrupted run";
  }
  if (lines.empty()) {
    // Only a partial header, or nothing: start over.
    return absl::StrCat(kMetricsHeader, "\n");
  }
  const bool wave1 = lines[0] == kMetricsHeaderV1;
  if (lines[0] != kMetricsHeader && !wave1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "metrics file ", path, " does not start with the header \"", kMetricsHeader,
        "\" (found \"", lines[0].substr(0, 80), "\"); move it away to resume"));
  }
  std::string kept = absl::StrCat(kMetricsHeader, "\n");
  int64_t dropped = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    const size_t comma = line.find(',');
    int64_t step = 0;
    if (comma == std::string::npos || !absl::SimpleAtoi(line.substr(0, comma), &step)) {
      return absl::FailedPreconditionError(absl::StrCat("metrics file ", path, ":", i + 1,
                                                        ": not a metrics row: \"",
                                                        line.substr(0, 80), "\""));
    }
    if (step <= resume_step) {
      absl::StrAppend(&kept, wave1 ? UpgradeWave1Row(line) : line, "\n");
    } else {
      ++dropped;
    }
  }
  if (dropped > 0) {
    LOG(INFO) << path << ": dropped " << dropped << " rows after step " << resume_step
              << " (written after the checkpoint this run resumes from)";
  }
  return kept;
}

}  // namespace

std::string MetricsPath(const std::string& run_dir) { return absl::StrCat(run_dir, "/metrics.csv"); }

std::string FormatMetricsRow(const MetricsRow& row) {
  std::string line = absl::StrFormat("%d,%d,%.9g,%.9g,%.9g,%.9g,%.1f,%.3f,", row.step, row.epoch,
                                     row.loss, row.top1, row.lr, row.key_momentum,
                                     row.images_per_sec, row.data_wait_share);
  auto append = [&line](const std::optional<double>& v) {
    if (v.has_value()) absl::StrAppendFormat(&line, "%.6g", *v);
  };
  append(row.knn_top1);
  line += ',';
  append(row.probe_train_top1);
  line += ',';
  append(row.probe_test_top1);
  return line;
}

absl::StatusOr<MetricsLog> MetricsLog::Open(const std::string& path,
                                            std::optional<int64_t> resume_step) {
  std::string contents = absl::StrCat(kMetricsHeader, "\n");
  if (resume_step.has_value()) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      LOG(WARNING) << "resuming without a metrics file: starting a new " << path;
    } else {
      std::stringstream buffer;
      buffer << in.rdbuf();
      if (in.bad()) {
        return absl::UnknownError(absl::StrCat("cannot read metrics file ", path));
      }
      absl::StatusOr<std::string> kept = TrimForResume(path, buffer.str(), *resume_step);
      if (!kept.ok()) return kept.status();
      contents = *std::move(kept);
    }
  }
  absl::Status replaced = ReplaceFile(path, contents);
  if (!replaced.ok()) return replaced;
  FILE* f = std::fopen(path.c_str(), "ab");
  if (f == nullptr) {
    return absl::UnknownError(
        absl::StrCat("cannot open metrics file ", path, ": ", ErrnoText(errno)));
  }
  return MetricsLog(path, f);
}

absl::Status MetricsLog::Append(const MetricsRow& row) {
  const std::string line = absl::StrCat(FormatMetricsRow(row), "\n");
  if (std::fwrite(line.data(), 1, line.size(), file_.get()) != line.size() ||
      std::fflush(file_.get()) != 0) {
    return absl::UnknownError(
        absl::StrCat("cannot append to metrics file ", path_, ": ", ErrnoText(errno)));
  }
  return absl::OkStatus();
}

}  // namespace moco
