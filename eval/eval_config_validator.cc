#include "eval/eval_config_validator.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "eval/eval_config_io.h"
#include "moco/augmentation_presets.h"

namespace moco {
namespace eval {
namespace {

class Errors {
 public:
  template <typename T>
  void Require(bool ok, const std::string& field, const T& value, const std::string& rule) {
    if (!ok) list_.push_back({field, absl::StrCat(field, " (", value, ") ", rule)});
  }
  void Add(const std::string& field, const std::string& message) {
    list_.push_back({field, message});
  }
  std::vector<ConfigError> Take() { return std::move(list_); }

 private:
  std::vector<ConfigError> list_;
};

void CheckCheckpoint(const EvalConfig& c, const EvalValidationOptions& o, Errors& e) {
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

void CheckData(const EvalConfig& c, const EvalValidationOptions& o, Errors& e) {
  if (!c.has_data()) {
    e.Add("data", "data must be set (the dataset to evaluate on, a moco.DataConfig)");
    return;
  }
  const DataConfig& d = c.data();
  e.Require(d.dataset() != DataConfig::DATASET_UNSPECIFIED, "data.dataset",
            DataConfig::Dataset_Name(d.dataset()),
            "must be set to IDX, CIFAR10, CIFAR100 or IMAGE_FOLDER");
  if (d.train_path().empty()) {
    e.Add("data.train_path", "data.train_path must be set");
  } else if (o.check_paths) {
    e.Require(std::filesystem::exists(d.train_path()), "data.train_path", d.train_path(),
              "does not exist");
  }
  if (!d.test_path().empty() && o.check_paths) {
    e.Require(std::filesystem::exists(d.test_path()), "data.test_path", d.test_path(),
              "does not exist");
  }
  if (d.dataset() == DataConfig::IMAGE_FOLDER && d.test_path().empty()) {
    e.Add("data.test_path", "data.test_path must be set for IMAGE_FOLDER (the held-out folder)");
  }
  e.Require(d.image_size() > 0 && d.image_size() <= 4096, "data.image_size", d.image_size(),
            "must be in [1, 4096] pixels");
  e.Require(d.num_workers() >= 1 && d.num_workers() <= 256, "data.num_workers", d.num_workers(),
            "must be in [1, 256]");
  e.Require(d.prefetch_batches() >= 1 && d.prefetch_batches() <= 64, "data.prefetch_batches",
            d.prefetch_batches(), "must be in [1, 64]");
  const AugmentationConfig a = ResolveAugmentation(d.augmentation());
  e.Require(a.normalize_mean_size() == 1 || a.normalize_mean_size() == 3,
            "data.augmentation.normalize_mean", absl::StrCat(a.normalize_mean_size(), " values"),
            "must have 1 or 3 values (one per image channel)");
  e.Require(a.normalize_std_size() == a.normalize_mean_size(), "data.augmentation.normalize_std",
            absl::StrCat(a.normalize_std_size(), " values"),
            "must have as many values as normalize_mean");
  for (int i = 0; i < a.normalize_std_size(); ++i) {
    e.Require(a.normalize_std(i) > 0, absl::StrCat("data.augmentation.normalize_std[", i, "]"),
              a.normalize_std(i), "must be > 0");
  }
}

void CheckKnn(const EvalConfig& c, Errors& e) {
  e.Require(c.knn().k() > 0, "knn.k", c.knn().k(), "must be > 0");
  e.Require(c.knn().temperature() > 0, "knn.temperature", c.knn().temperature(), "must be > 0");
}

void CheckLinear(const EvalConfig& c, Errors& e) {
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

void CheckBackend(const EvalConfig& c, const EvalValidationOptions& o, Errors& e) {
  const BackendConfig& b = c.backend();
  e.Require(std::find(o.known_backends.begin(), o.known_backends.end(), b.name()) !=
                o.known_backends.end(),
            "backend.name", b.name(),
            absl::StrCat("is not a backend of this binary (available: ",
                         absl::StrJoin(o.known_backends, ", "), ")"));
  const std::string& dev = b.device();
  int index = 0;
  const bool device_ok = dev == "cpu" || dev == "cuda" ||
                         (absl::StartsWith(dev, "cuda:") &&
                          absl::SimpleAtoi(dev.substr(5), &index) && index >= 0);
  e.Require(device_ok, "backend.device", dev, "must be \"cpu\", \"cuda\" or \"cuda:N\"");
}

void CheckRun(const EvalConfig& c, Errors& e) {
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
  Errors e;
  CheckCheckpoint(config, options, e);
  CheckData(config, options, e);
  CheckKnn(config, e);
  CheckLinear(config, e);
  CheckBackend(config, options, e);
  CheckRun(config, e);
  return e.Take();
}

absl::Status ValidateEvalConfig(const EvalConfig& config, const EvalValidationOptions& options,
                                const std::string& source) {
  const std::vector<ConfigError> errors = FindEvalConfigErrors(config, options);
  if (errors.empty()) return absl::OkStatus();
  std::string message = absl::StrCat(source, ": ", errors.size(), " config error",
                                     errors.size() == 1 ? "" : "s", ":");
  for (const ConfigError& error : errors) absl::StrAppend(&message, "\n  ", error.message);
  return absl::InvalidArgumentError(message);
}

}  // namespace eval
}  // namespace moco
