#include "moco/pretrain/run_start.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"
#include "moco/config/config_io.h"
#include "moco/core/status_macros.h"

namespace moco {

namespace fs = std::filesystem;

absl::Status WriteTextFileAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    out.flush();
    if (!out) return absl::UnknownError(absl::StrCat("cannot write ", tmp));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return absl::UnknownError(absl::StrCat("cannot rename ", tmp, ": ", ec.message()));
  return absl::OkStatus();
}

namespace {

absl::StatusOr<RunStart> NewRunStart(const PretrainOptions& options, const std::string& run_dir) {
  if (!options.config.has_value()) return absl::InvalidArgumentError("no config given");
  if (fs::exists(CheckpointPath(run_dir)) || fs::exists(PreviousCheckpointPath(run_dir))) {
    return absl::FailedPreconditionError(absl::StrCat(
        "run folder ", run_dir, " already holds a checkpoint; pass --resume to continue that "
        "run, or set another run.run_dir (nothing was changed)"));
  }
  RunStart start;
  start.config = *options.config;
  start.config.mutable_run()->set_run_dir(run_dir);
  return start;
}

absl::Status RequireSameConfig(const ExperimentConfig& checkpoint_config,
                               const PretrainOptions& options, const std::string& run_dir) {
  ExperimentConfig given = *options.config;
  given.mutable_run()->set_run_dir(run_dir);
  std::string differences;
  google::protobuf::util::MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&differences);
  if (differencer.Compare(checkpoint_config, given)) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      options.config_source, " differs from the config of the checkpoint in ", run_dir,
      " (a resumed run must use the same config; omit --config to use the checkpoint's):\n",
      differences));
}

}  // namespace

absl::StatusOr<RunStart> ResolveRunStart(const PretrainOptions& options) {
  std::string run_dir = options.run_dir_override;
  if (run_dir.empty() && options.config.has_value()) run_dir = options.config->run().run_dir();
  if (run_dir.empty()) {
    return absl::InvalidArgumentError("no run folder: give a config or --run_dir");
  }
  if (!options.resume) return NewRunStart(options, run_dir);
  RunStart start;
  ASSIGN_OR_RETURN(Checkpoint checkpoint, ReadLatestCheckpoint(run_dir));
  RETURN_IF_ERROR(ParseTextProto(checkpoint.config_text, CheckpointPath(run_dir) + " (config)",
                                 &start.config));
  start.config.mutable_run()->set_run_dir(run_dir);
  if (options.config.has_value()) RETURN_IF_ERROR(RequireSameConfig(start.config, options, run_dir));
  start.checkpoint = std::move(checkpoint);
  return start;
}

}  // namespace moco
