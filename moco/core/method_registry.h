// Name -> training-method factory, the twin of backend_registry.h. Methods register from their
// own libraries (alwayslink = 1; //moco/methods:all_methods links every method):
//
//   MOCO_REGISTER_METHOD(moco_v2, CreateMocoQueueMethod);
//   ASSIGN_OR_RETURN(std::unique_ptr<TrainingMethod> m, CreateTrainingMethod(config, backend));
#ifndef MOCO_CORE_METHOD_REGISTRY_H_
#define MOCO_CORE_METHOD_REGISTRY_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "moco/config/config.pb.h"
#include "moco/core/backend.h"
#include "moco/core/training_method.h"

namespace moco {

// Builds a freshly initialized method (weights from run.seed) on `backend`, which must outlive
// the method.
using MethodFactory = std::function<absl::StatusOr<std::unique_ptr<TrainingMethod>>(
    const ExperimentConfig& config, Backend& backend)>;

// A second registration of one name is a fatal programming error.
bool RegisterMethod(const std::string& name, MethodFactory factory);

// Names of the registered methods, sorted.
std::vector<std::string> RegisteredMethodNames();

// The method named by config.moco().method(); NotFound listing the available names otherwise.
absl::StatusOr<std::unique_ptr<TrainingMethod>> CreateTrainingMethod(
    const ExperimentConfig& config, Backend& backend);

}  // namespace moco

#define MOCO_REGISTER_METHOD(name, factory)                       \
  static const bool moco_method_registered_##name [[maybe_unused]] = \
      ::moco::RegisterMethod(#name, factory)

#endif  // MOCO_CORE_METHOD_REGISTRY_H_
