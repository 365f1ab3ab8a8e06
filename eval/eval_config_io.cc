#include "eval/eval_config_io.h"

#include <filesystem>

#include "moco/config/config_io.h"

namespace moco {
namespace eval {

absl::StatusOr<EvalConfig> LoadEvalConfig(const std::string& path) {
  EvalConfig config;
  absl::Status status = ParseTextProtoFile(path, &config);
  if (!status.ok()) return status;
  return config;
}

std::vector<int> EffectiveMilestones(const LinearConfig& linear) {
  if (linear.milestones_size() == 0) return {60, 80};
  return std::vector<int>(linear.milestones().begin(), linear.milestones().end());
}

std::vector<EvalConfig::Encoders> SelectedEncoders(const EvalConfig& config) {
  if (config.encoders() == EvalConfig::ALL) {
    return {EvalConfig::LEARNED, EvalConfig::RANDOM_INIT, EvalConfig::RAW_PIXELS};
  }
  return {config.encoders()};
}

std::string ResultsDir(const EvalConfig& config) {
  if (!config.results_dir().empty()) return config.results_dir();
  const std::string parent = std::filesystem::path(config.checkpoint()).parent_path().string();
  return parent.empty() ? "." : parent;
}

}  // namespace eval
}  // namespace moco
