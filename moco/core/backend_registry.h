// Name -> backend factory. Backends register from their own libraries (alwayslink = 1), so a
// binary has exactly the backends it links:
//
//   MOCO_REGISTER_BACKEND(torch, [](const BackendOptions& o) { return TorchBackend::Create(o); });
//   ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend, CreateBackend("torch", options));
#ifndef MOCO_CORE_BACKEND_REGISTRY_H_
#define MOCO_CORE_BACKEND_REGISTRY_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "moco/core/backend.h"

namespace moco {

using BackendFactory =
    std::function<absl::StatusOr<std::unique_ptr<Backend>>(const BackendOptions&)>;

// Registers `factory` under `name`. A second registration of the same name is a fatal
// programming error (two libraries claim one name).
bool RegisterBackend(const std::string& name, BackendFactory factory);

// Names of the registered backends, sorted.
std::vector<std::string> RegisteredBackendNames();

// NotFound listing the available names when `name` is not registered in this binary.
absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(const std::string& name,
                                                       const BackendOptions& options);

}  // namespace moco

#define MOCO_REGISTER_BACKEND(name, factory)                                             \
  static const bool moco_backend_registered_##name [[maybe_unused]] =                   \
      ::moco::RegisterBackend(#name, factory)

#endif  // MOCO_CORE_BACKEND_REGISTRY_H_
