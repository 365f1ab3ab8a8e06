#include "eval/results_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <stdlib.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "moco/config/config_io.h"
#include "moco/observe/events/event_file.h"

namespace moco {
namespace eval {
namespace {

bool StartsWithCheckpointMagic(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[8] = {};
  in.read(magic, sizeof(magic));
  return in.gcount() == 8 && std::memcmp(magic, "MOCOCKPT", 8) == 0;
}

}  // namespace

absl::Status AppendEvalResultsToEvents(const std::string& dir, const EvalResults& results) {
  tfevents::Scalars scalars;
  for (const auto& r : results.results()) {
    const std::string base = absl::StrCat("eval/", results.tool());
    scalars.push_back({absl::StrCat(base, "/top1/", r.encoder()), static_cast<float>(100 * r.top1())});
    scalars.push_back({absl::StrCat(base, "/top5/", r.encoder()), static_cast<float>(100 * r.top5())});
  }
  return tfevents::AppendEvalScalars(dir, results.checkpoint_global_step(), scalars);
}

std::string ResultsPath(const std::string& dir, const std::string& tool) {
  return (std::filesystem::path(dir) / (tool + "_results.pbtxt")).string();
}

absl::StatusOr<std::string> WriteEvalResults(const std::string& dir, const EvalResults& results) {
  if (results.tool().empty()) return absl::InvalidArgumentError("results.tool is empty");
  const std::string path = ResultsPath(dir, results.tool());
  std::error_code ec;
  const bool same_as_checkpoint =
      !results.checkpoint().empty() && std::filesystem::exists(results.checkpoint(), ec) &&
      std::filesystem::exists(path, ec) &&
      std::filesystem::equivalent(path, results.checkpoint(), ec);
  if (same_as_checkpoint || StartsWithCheckpointMagic(path)) {
    return absl::FailedPreconditionError(
        absl::StrCat("refusing to write results over ", path, ": it is a checkpoint"));
  }
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot create results folder ", dir, ": ", ec.message()));
  }
  const std::string tmp = absl::StrCat(path, ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) {
      return absl::UnavailableError(
          absl::StrCat("cannot write ", tmp, ": ", std::strerror(errno)));
    }
    out << "# proto-file: eval/eval_config.proto\n# proto-message: moco.eval.EvalResults\n"
        << ToTextProto(results);
    out.close();  // close flushes: a full disk shows here
    if (!out) {
      const std::string reason = std::strerror(errno);
      std::remove(tmp.c_str());
      return absl::UnavailableError(absl::StrCat("cannot write ", tmp, ": ", reason));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    std::remove(tmp.c_str());
    return absl::UnavailableError(absl::StrCat("cannot rename ", tmp, " to ", path, ": ", reason));
  }
  return path;
}

absl::Status CheckResultsDirWritable(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot create results folder ", dir, ": ", ec.message()));
  }
  std::string probe = (std::filesystem::path(dir) / ".write_probe.XXXXXX").string();
  const int fd = ::mkstemp(&probe[0]);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("results folder ", dir,
                                               " is not writable: ", std::strerror(errno)));
  }
  ::close(fd);
  ::unlink(probe.c_str());
  return absl::OkStatus();
}

absl::StatusOr<std::string> WriteEvalResultsOrPrint(const std::string& dir,
                                                    const EvalResults& results) {
  absl::StatusOr<std::string> path = WriteEvalResults(dir, results);
  if (path.ok()) return path;
  std::cout << FormatResultsTable(results) << std::flush;
  return absl::Status(path.status().code(),
                      absl::StrCat(path.status().message(),
                                   " (the results table was printed to stdout)"));
}

std::string FormatResultsTable(const EvalResults& results) {
  const bool linear = results.tool() == "linear_probe";
  const EvalConfig& c = results.eval_config();
  std::string title;
  if (linear) {
    const LinearConfig& l = c.linear();
    title = absl::StrFormat(
        "Linear probe (%s, %d epochs, lr %g, batch %d%s) of %s (epoch %d)",
        LinearConfig::Mode_Name(l.mode()), l.epochs(), l.lr(), l.batch_size(),
        l.standardize_features() ? ", standardized features" : "", results.checkpoint(),
        results.checkpoint_epoch());
  } else {
    title = absl::StrFormat("Weighted kNN (k = %d, T = %g) of %s (epoch %d)", c.knn().k(),
                            c.knn().temperature(), results.checkpoint(),
                            results.checkpoint_epoch());
  }
  std::string table = title + "\n";
  absl::StrAppend(&table, absl::StrFormat("  %-12s %8s %8s %6s %8s %8s %8s%s\n", "encoder",
                                          "top-1", "top-5", "dim", "train", "test", "seconds",
                                          linear ? "  train loss" : ""));
  for (const auto& r : results.results()) {
    absl::StrAppend(&table,
                    absl::StrFormat("  %-12s %7.2f%% %7.2f%% %6d %8d %8d %8.1f", r.encoder(),
                                    100 * r.top1(), 100 * r.top5(), r.feature_dim(),
                                    r.train_images(), r.test_images(), r.seconds()));
    if (linear) absl::StrAppend(&table, absl::StrFormat("  %10.4f", r.final_train_loss()));
    absl::StrAppend(&table, "\n");
  }
  return table;
}

}  // namespace eval
}  // namespace moco
