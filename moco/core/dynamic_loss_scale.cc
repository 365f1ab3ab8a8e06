#include "moco/core/dynamic_loss_scale.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"

namespace moco {
namespace {

constexpr int64_t kMaxCount = int64_t{1} << 24;  // integers a float holds exactly
constexpr const char* kNames[] = {"growth_tracker", "scale", "skipped_steps"};

}  // namespace

LossScaleOptions LossScaleOptionsFromConfig(const LossScalingConfig& config) {
  LossScaleOptions options;
  options.init_scale = config.init_scale();
  options.growth_factor = config.growth_factor();
  options.backoff_factor = config.backoff_factor();
  options.growth_interval = config.growth_interval();
  return options;
}

bool LossScalingEnabled(const BackendConfig& backend) {
  if (backend.loss_scaling().has_enabled()) return backend.loss_scaling().enabled();
  return backend.precision() == BackendConfig::FP16;
}

std::vector<std::pair<std::string, std::string>> LossScaleOptionProblems(
    const LossScaleOptions& o) {
  std::vector<std::pair<std::string, std::string>> problems;
  auto require = [&](bool ok, const char* name, auto value, const char* rule) {
    if (!ok) problems.emplace_back(name, absl::StrCat(name, " (", value, ") ", rule));
  };
  require(std::isfinite(o.init_scale) && o.init_scale > 0, "init_scale", o.init_scale,
          "must be finite and > 0 (GradScaler's default: 65536)");
  require(std::isfinite(o.growth_factor) && o.growth_factor > 1, "growth_factor",
          o.growth_factor, "must be finite and > 1");
  require(o.backoff_factor > 0 && o.backoff_factor < 1, "backoff_factor", o.backoff_factor,
          "must be in (0, 1)");
  require(o.growth_interval >= 1 && o.growth_interval < kMaxCount, "growth_interval",
          o.growth_interval, "must be in [1, 2^24)");
  return problems;
}

absl::StatusOr<DynamicLossScale> DynamicLossScale::Create(const LossScaleOptions& options) {
  const auto problems = LossScaleOptionProblems(options);
  if (!problems.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("loss scaling: ", problems[0].second));
  }
  return DynamicLossScale(options);
}

void DynamicLossScale::Update(bool gradients_finite) {
  if (!gradients_finite) {
    // A backoff can underflow to 0 only after ~150 skipped steps in a row at 0.5; keep the
    // smallest positive float rather than a scale that zeroes every gradient.
    const float backed_off = scale_ * options_.backoff_factor;
    scale_ = backed_off > 0 ? backed_off : std::nextafter(0.0f, 1.0f);
    growth_tracker_ = 0;
    if (skipped_steps_ + 1 < kMaxCount) ++skipped_steps_;
    return;
  }
  if (++growth_tracker_ < options_.growth_interval) return;
  const float grown = scale_ * options_.growth_factor;
  if (std::isfinite(grown)) scale_ = grown;
  growth_tracker_ = 0;
}

NamedArrays DynamicLossScale::Export() const {
  NamedArrays state;
  state.emplace("scale", HostArray({}, {scale_}));
  state.emplace("growth_tracker", HostArray({}, {static_cast<float>(growth_tracker_)}));
  state.emplace("skipped_steps", HostArray({}, {static_cast<float>(skipped_steps_)}));
  return state;
}

absl::Status DynamicLossScale::Import(const NamedArrays& state) {
  for (const auto& [name, array] : state) {
    if (name != kNames[0] && name != kNames[1] && name != kNames[2]) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unexpected array '", name, "' (loss scaling has scale, growth_tracker, skipped_steps)"));
    }
  }
  float values[3];
  for (int i = 0; i < 3; ++i) {
    const auto it = state.find(kNames[i]);
    if (it == state.end()) {
      return absl::InvalidArgumentError(absl::StrCat("missing array '", kNames[i], "'"));
    }
    if (!it->second.shape().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "array '", kNames[i], "' has shape ", ShapeToString(it->second.shape()),
          ", expected a scalar ()"));
    }
    values[i] = it->second.data()[0];
  }
  const float tracker = values[0], scale = values[1], skipped = values[2];
  if (!(std::isfinite(scale) && scale > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("array 'scale' is ", scale, ", expected a finite value > 0"));
  }
  auto check_count = [](const char* name, float v, int64_t limit) -> absl::Status {
    if (v >= 0 && v < static_cast<float>(limit) && v == std::floor(v)) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat("array '", name, "' is ", v, ", expected an integer in [0, ", limit, ")"));
  };
  if (absl::Status s = check_count("growth_tracker", tracker, options_.growth_interval); !s.ok()) {
    return s;
  }
  if (absl::Status s = check_count("skipped_steps", skipped, kMaxCount); !s.ok()) return s;
  scale_ = scale;
  growth_tracker_ = static_cast<int64_t>(tracker);
  skipped_steps_ = static_cast<int64_t>(skipped);
  return absl::OkStatus();
}

}  // namespace moco
