// Where this process sits in a data-parallel run: torchrun's environment contract (RANK,
// WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), so the same binary runs
// under torchrun, srun, a Kubernetes job or our own launcher, one process per rank.
//
//   ASSIGN_OR_RETURN(DistributedEnv env, DistributedEnvFromEnvironment());
//   if (env.world_size > 1) ... CreateGlooCommunicator(env, options) ...
#ifndef BACKENDS_DISTRIBUTED_DIST_ENV_H_
#define BACKENDS_DISTRIBUTED_DIST_ENV_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace moco::distributed {

struct DistributedEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
};

// Reads the variables through `getenv` (tests pass their own). WORLD_SIZE unset: world 1 (the
// others are then ignored). Otherwise RANK, MASTER_ADDR and MASTER_PORT are required;
// LOCAL_RANK / LOCAL_WORLD_SIZE default to RANK / WORLD_SIZE. Errors name the variable, its
// value and the rule (e.g. "RANK (2) must be < WORLD_SIZE (2)").
absl::StatusOr<DistributedEnv> DistributedEnvFrom(
    const std::function<std::optional<std::string>(const std::string&)>& getenv);
absl::StatusOr<DistributedEnv> DistributedEnvFromEnvironment();

}  // namespace moco::distributed

#endif  // BACKENDS_DISTRIBUTED_DIST_ENV_H_
