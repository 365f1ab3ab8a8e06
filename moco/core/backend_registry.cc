#include "moco/core/backend_registry.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "glog/logging.h"
#include "moco/core/status_macros.h"

namespace moco {
namespace {

struct Registration {
  BackendFactory create;
  DeviceCheck check_device;
  BackendCapabilities capabilities;
};

struct Registry {
  absl::Mutex mutex;
  std::map<std::string, Registration> backends;
};

Registry& GetRegistry() {
  static auto* const registry = new Registry;
  return *registry;
}

// The registration of `name`, or NotFound listing what this binary has.
absl::StatusOr<Registration> Find(const std::string& name) {
  Registry& r = GetRegistry();
  {
    absl::MutexLock lock(&r.mutex);
    auto it = r.backends.find(name);
    if (it != r.backends.end()) return it->second;
  }
  return absl::NotFoundError(absl::StrCat("backend '", name,
                                          "' is not built into this binary (available: ",
                                          absl::StrJoin(RegisteredBackendNames(), ", "), ")"));
}

}  // namespace

bool RegisterBackend(const std::string& name, BackendFactory factory, DeviceCheck check_device,
                     BackendCapabilities capabilities) {
  CHECK(factory && check_device) << "backend '" << name << "' registered without a factory or device check";
  Registry& r = GetRegistry();
  absl::MutexLock lock(&r.mutex);
  CHECK(r.backends.emplace(name, Registration{std::move(factory), std::move(check_device), capabilities}).second)
      << "backend '" << name << "' registered twice";
  return true;
}

std::vector<std::string> RegisteredBackendNames() {
  Registry& r = GetRegistry();
  absl::MutexLock lock(&r.mutex);
  std::vector<std::string> names;
  for (const auto& [name, registration] : r.backends) names.push_back(name);
  return names;
}

absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(const std::string& name,
                                                       const BackendOptions& options) {
  ASSIGN_OR_RETURN(Registration registration, Find(name));
  return registration.create(options);
}

absl::StatusOr<std::unique_ptr<Backend>> CreateBackendForConfig(const ExperimentConfig& config) {
  BackendOptions options;
  options.device = config.backend().device();
  options.threads = config.run().threads();
  SetNumerics(config.backend(), &options);
  return CreateBackend(config.backend().name(), options);
}

void SetNumerics(const BackendConfig& config, BackendOptions* options) {
  switch (config.precision()) {
    case BackendConfig::BF16: options->precision = Precision::kBf16; break;
    case BackendConfig::FP16: options->precision = Precision::kFp16; break;
    default: options->precision = Precision::kFp32; break;
  }
  options->channels_last = config.channels_last();
}

absl::StatusOr<BackendCapabilities> Capabilities(const std::string& name) {
  ASSIGN_OR_RETURN(Registration registration, Find(name));
  return registration.capabilities;
}

absl::StatusOr<std::string> DeviceProblem(const std::string& name, const std::string& device) {
  ASSIGN_OR_RETURN(Registration registration, Find(name));
  return registration.check_device(device);
}

}  // namespace moco
