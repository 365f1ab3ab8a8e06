// Config -> optimizer: the one place that maps optimizer.algorithm to the backend primitive that
// implements it (SGD: Backend::CreateSgd, LARS: CreateLars, ADAMW: CreateAdamW).
#ifndef MOCO_CORE_OPTIMIZER_FACTORY_H_
#define MOCO_CORE_OPTIMIZER_FACTORY_H_

#include <memory>

#include "absl/status/statusor.h"
#include "moco/config/config.pb.h"
#include "moco/core/backend.h"

namespace moco {

// An optimizer over `encoder`'s parameters, which must outlive it.
absl::StatusOr<std::unique_ptr<Optimizer>> CreateOptimizer(Backend& backend, Encoder& encoder,
                                                           const OptimizerConfig& config);

}  // namespace moco

#endif  // MOCO_CORE_OPTIMIZER_FACTORY_H_
