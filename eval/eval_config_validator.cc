#include "eval/eval_config_validator.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "eval/eval_config_io.h"

namespace moco {
namespace eval {
namespace {

void CheckCheckpoint(const EvalConfig& c, const EvalValidationOptions& o, ConfigErrorList& e) {
  if (c.checkpoint().empty()) {
    e.Add("checkpoint", "checkpoint must be set (a pretraining checkpoint file, e.g. "
                        "runs/quickstart/checkpoint.ckpt)");
    return;
  }
  if (!o.check_paths) return;
  std::error_code ec;
  if (!std::filesystem::exists(c.checkpoint(), ec)) {
    e.Add("checkpoint", absl::StrCat("checkpoint (", c.checkpoint(), ") does not exist"));
  } else if (!std::filesystem::is_regular_file(c.checkpoint(), ec)) {
    e.Add("checkpoint", absl::StrCat("checkpoint (", c.checkpoint(), ") is not a regular file"));
  }
}

void CheckData(const EvalConfig& c, const EvalValidationOptions& o, ConfigErrorList& e) {
  if (!c.has_data()) {
    e.Add("data", "data must be set (the dataset to evaluate on, a moco.DataConfig)");
    return;
  }
  CheckDataConfig(c.data(), /*in_channels=*/0, o.check_paths, e);
}

void CheckKnn(const EvalConfig& c, ConfigErrorList& e) {
  e.Require(c.knn().k() > 0, "knn.k", c.knn().k(), "must be > 0");
  e.Require(c.knn().temperature() > 0, "knn.temperature", c.knn().temperature(), "must be > 0");
}

void CheckLinear(const EvalConfig& c, ConfigErrorList& e) {
  const LinearConfig& l = c.linear();
  e.Require(l.lr() > 0, "linear.lr", l.lr(), "must be > 0");
  e.Require(l.momentum() >= 0 && l.momentum() < 1, "linear.momentum", l.momentum(),
            "must be in [0, 1)");
  e.Require(l.weight_decay() >= 0, "linear.weight_decay", l.weight_decay(), "must be >= 0");
  e.Require(l.epochs() > 0, "linear.epochs", l.epochs(), "must be > 0");
  if (l.schedule() == LinearConfig::MULTI_STEP) {
    const std::vector<int> m = EffectiveMilestones(l);
    const std::string shown = absl::StrJoin(m, ", ");
    const std::string note = l.milestones_size() == 0 ? "; empty means 60, 80" : "";
    bool in_range = true, increasing = true;
    for (size_t i = 0; i < m.size(); ++i) {
      in_range = in_range && m[i] >= 1 && m[i] < l.epochs();
      increasing = increasing && (i == 0 || m[i] > m[i - 1]);
    }
    e.Require(in_range, "linear.milestones", shown,
              absl::StrCat("must each be in [1, linear.epochs = ", l.epochs(), ")", note));
    e.Require(increasing, "linear.milestones", shown, "must be strictly increasing");
    e.Require(l.gamma() > 0 && l.gamma() <= 1, "linear.gamma", l.gamma(), "must be in (0, 1]");
  }
  e.Require(l.batch_size() > 0, "linear.batch_size", l.batch_size(), "must be > 0");
  e.Require(!l.standardize_features() || l.mode() == LinearConfig::FEATURES,
            "linear.standardize_features", "true", "requires linear.mode FEATURES");
}

void CheckRun(const EvalConfig& c, ConfigErrorList& e) {
  if (!c.results_dir().empty()) {
    std::error_code ec;
    const bool exists = std::filesystem::exists(c.results_dir(), ec);
    e.Require(!exists || std::filesystem::is_directory(c.results_dir(), ec), "results_dir",
              c.results_dir(), "exists and is not a folder");
  }
  e.Require(c.threads() >= 0 && c.threads() <= 1024, "threads", c.threads(),
            "must be in [0, 1024] (0 = all cores)");
  e.Require(c.extract_batch_size() >= 1 && c.extract_batch_size() <= 65536,
            "extract_batch_size", c.extract_batch_size(), "must be in [1, 65536]");
  e.Require(c.max_train_images() >= 0, "max_train_images", c.max_train_images(),
            "must be >= 0 (0 = all)");
  e.Require(c.max_test_images() >= 0, "max_test_images", c.max_test_images(),
            "must be >= 0 (0 = all)");
}

}  // namespace

std::vector<ConfigError> FindEvalConfigErrors(const EvalConfig& config,
                                              const EvalValidationOptions& options) {
  ConfigErrorList e;
  CheckCheckpoint(config, options, e);
  CheckData(config, options, e);
  CheckKnn(config, e);
  CheckLinear(config, e);
  CheckBackendConfig(config.backend(), e);
  CheckRun(config, e);
  return e.Take();
}

absl::Status ValidateEvalConfig(const EvalConfig& config, const EvalValidationOptions& options,
                                const std::string& source) {
  return ConfigErrorsToStatus(FindEvalConfigErrors(config, options), source);
}

}  // namespace eval
}  // namespace moco
