#include "moco/core/optimizer_factory.h"

#include "absl/strings/str_cat.h"

namespace moco {

absl::StatusOr<std::unique_ptr<Optimizer>> CreateOptimizer(Backend& backend, Encoder& encoder,
                                                           const OptimizerConfig& config) {
  switch (config.algorithm()) {
    case OptimizerConfig::SGD:
      return backend.CreateSgd(encoder, config);
    case OptimizerConfig::LARS:
      return backend.CreateLars(encoder, config);
    case OptimizerConfig::ADAMW:
      return backend.CreateAdamW(encoder, config);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("optimizer.algorithm ", OptimizerConfig::Algorithm_Name(config.algorithm()),
                   " is not supported by backend '", backend.name(), "'"));
}

}  // namespace moco
