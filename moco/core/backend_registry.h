// Name -> backend factory and device-string check. Backends register from their own libraries
// (alwayslink = 1), so a binary has exactly the backends it links (//backends:all links every
// backend; a new backend adds one line there). Validators and tools learn the names from here:
//
//   MOCO_REGISTER_BACKEND(torch, TorchBackend::Create, CheckTorchDevice);
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
// The problem with a device string for this backend ("" when acceptable), as a phrase that
// completes "backend.device 'cuda:x' ...", e.g. "must be \"cpu\" for the eigen backend".
// A syntax check only: whether the device exists is checked when the backend is created.
using DeviceCheck = std::function<std::string(const std::string& device)>;

// What a backend offers beyond fp32 NCHW (BackendOptions::precision, channels_last).
struct BackendCapabilities {
  bool bf16 = false;           // Precision::kBf16
  bool channels_last = false;  // BackendOptions::channels_last
  bool fp16 = false;           // Precision::kFp16 (on CUDA devices: there are no CPU kernels)
};

bool RegisterBackend(const std::string& name, BackendFactory factory, DeviceCheck check_device,
                     BackendCapabilities capabilities = {});

// Names of the registered backends, sorted.
std::vector<std::string> RegisteredBackendNames();

// NotFound listing the available names when `name` is not registered in this binary.
absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(const std::string& name,
                                                       const BackendOptions& options);

// The backend config.backend names, with config.backend.device and run.threads.
absl::StatusOr<std::unique_ptr<Backend>> CreateBackendForConfig(const ExperimentConfig& config);

// The registered backend's verdict on `device` ("" = acceptable); NotFound as CreateBackend when
// `name` is not registered.
absl::StatusOr<std::string> DeviceProblem(const std::string& name, const std::string& device);

// The registered backend's capabilities; NotFound as CreateBackend.
absl::StatusOr<BackendCapabilities> Capabilities(const std::string& name);

// BackendConfig's precision and channels_last as BackendOptions (device, threads untouched).
void SetNumerics(const BackendConfig& config, BackendOptions* options);

}  // namespace moco

// MOCO_REGISTER_BACKEND(name, factory, check_device[, capabilities])
#define MOCO_REGISTER_BACKEND(name, ...)                                                 \
  static const bool moco_backend_registered_##name [[maybe_unused]] =                   \
      ::moco::RegisterBackend(#name, __VA_ARGS__)

#endif  // MOCO_CORE_BACKEND_REGISTRY_H_
