#include "backends/distributed/dist_env.h"

#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace moco::distributed {
namespace {

using Getenv = std::function<std::optional<std::string>(const std::string&)>;

absl::StatusOr<int> ReadInt(const Getenv& getenv, const std::string& name,
                            std::optional<int> fallback, int min, int max) {
  std::optional<std::string> text = getenv(name);
  if (!text.has_value() || text->empty()) {
    if (fallback.has_value()) return *fallback;
    return absl::InvalidArgumentError(
        absl::StrCat(name, " is not set (required when WORLD_SIZE is set)"));
  }
  int value = 0;
  if (!absl::SimpleAtoi(*text, &value)) {
    return absl::InvalidArgumentError(absl::StrCat(name, " (", *text, ") is not an integer"));
  }
  if (value < min || value > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " (", value, ") must be in [", min, ", ", max, "]"));
  }
  return value;
}

}  // namespace

absl::StatusOr<DistributedEnv> DistributedEnvFrom(const Getenv& getenv) {
  DistributedEnv env;
  std::optional<std::string> world = getenv("WORLD_SIZE");
  if (!world.has_value() || world->empty()) return env;
  absl::StatusOr<int> v = ReadInt(getenv, "WORLD_SIZE", std::nullopt, 1, 1 << 20);
  if (!v.ok()) return v.status();
  env.world_size = *v;
  if (!(v = ReadInt(getenv, "RANK", std::nullopt, 0, 1 << 20)).ok()) return v.status();
  env.rank = *v;
  if (env.rank >= env.world_size) {
    return absl::InvalidArgumentError(absl::StrCat("RANK (", env.rank, ") must be < WORLD_SIZE (",
                                                   env.world_size, ")"));
  }
  if (!(v = ReadInt(getenv, "LOCAL_WORLD_SIZE", env.world_size, 1, env.world_size)).ok()) {
    return v.status();
  }
  env.local_world_size = *v;
  if (!(v = ReadInt(getenv, "LOCAL_RANK", env.rank % env.local_world_size, 0,
                    env.local_world_size - 1))
           .ok()) {
    return v.status();
  }
  env.local_rank = *v;
  std::optional<std::string> addr = getenv("MASTER_ADDR");
  if (!addr.has_value() || addr->empty()) {
    if (env.world_size > 1) {
      return absl::InvalidArgumentError("MASTER_ADDR is not set (required when WORLD_SIZE > 1)");
    }
  } else {
    env.master_addr = *addr;
  }
  if (!(v = ReadInt(getenv, "MASTER_PORT", env.world_size > 1 ? std::nullopt
                                                              : std::optional<int>(29500),
                    1, 65535))
           .ok()) {
    return v.status();
  }
  env.master_port = *v;
  return env;
}

absl::StatusOr<DistributedEnv> DistributedEnvFromEnvironment() {
  return DistributedEnvFrom([](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  });
}

}  // namespace moco::distributed
