#include "moco/core/backend_registry.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "glog/logging.h"

namespace moco {
namespace {

struct Registry {
  absl::Mutex mutex;
  std::map<std::string, BackendFactory> factories;
};

Registry& GetRegistry() {
  static auto* const registry = new Registry;
  return *registry;
}

}  // namespace

bool RegisterBackend(const std::string& name, BackendFactory factory) {
  Registry& r = GetRegistry();
  absl::MutexLock lock(&r.mutex);
  CHECK(r.factories.emplace(name, std::move(factory)).second)
      << "backend '" << name << "' registered twice";
  return true;
}

std::vector<std::string> RegisteredBackendNames() {
  Registry& r = GetRegistry();
  absl::MutexLock lock(&r.mutex);
  std::vector<std::string> names;
  for (const auto& [name, factory] : r.factories) names.push_back(name);
  return names;
}

absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(const std::string& name,
                                                       const BackendOptions& options) {
  BackendFactory factory;
  {
    Registry& r = GetRegistry();
    absl::MutexLock lock(&r.mutex);
    auto it = r.factories.find(name);
    if (it != r.factories.end()) factory = it->second;
  }
  if (!factory) {
    return absl::NotFoundError(absl::StrCat("backend '", name,
                                            "' is not built into this binary (available: ",
                                            absl::StrJoin(RegisteredBackendNames(), ", "), ")"));
  }
  return factory(options);
}

}  // namespace moco
