#include "moco/core/method_registry.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "glog/logging.h"

namespace moco {
namespace {

struct Registry {
  absl::Mutex mutex;
  std::map<std::string, MethodFactory> factories;
};

Registry& GetRegistry() {
  static auto* const registry = new Registry;
  return *registry;
}

}  // namespace

bool RegisterMethod(const std::string& name, MethodFactory factory) {
  CHECK(factory) << "method '" << name << "' registered without a factory";
  Registry& r = GetRegistry();
  absl::MutexLock lock(&r.mutex);
  CHECK(r.factories.emplace(name, std::move(factory)).second)
      << "method '" << name << "' registered twice";
  return true;
}

std::vector<std::string> RegisteredMethodNames() {
  Registry& r = GetRegistry();
  absl::MutexLock lock(&r.mutex);
  std::vector<std::string> names;
  for (const auto& [name, factory] : r.factories) names.push_back(name);
  return names;
}

absl::StatusOr<std::unique_ptr<TrainingMethod>> CreateTrainingMethod(
    const ExperimentConfig& config, Backend& backend) {
  const std::string& name = config.moco().method();
  MethodFactory factory;
  {
    Registry& r = GetRegistry();
    absl::MutexLock lock(&r.mutex);
    auto it = r.factories.find(name);
    if (it != r.factories.end()) factory = it->second;
  }
  if (!factory) {
    return absl::NotFoundError(absl::StrCat("moco.method '", name,
                                            "' is not built into this binary (available: ",
                                            absl::StrJoin(RegisteredMethodNames(), ", "), ")"));
  }
  return factory(config, backend);
}

}  // namespace moco
