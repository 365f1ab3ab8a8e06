// The Communicator (moco/core/communicator.h) on c10d: ProcessGroupGloo over a TCPStore
// rendezvous at MASTER_ADDR:MASTER_PORT (rank 0 hosts the store). Works on both backends'
// tensors: torch tensors directly, Eigen tensors by wrapping their host memory with
// torch::from_blob (no copy).
//
//   ASSIGN_OR_RETURN(DistributedEnv env, DistributedEnvFromEnvironment());
//   GlooOptions options;
//   options.timeout = std::chrono::seconds(300);
//   options.rendezvous_tag = ConfigHash(config);  // ranks with different configs are refused
//   ASSIGN_OR_RETURN(std::unique_ptr<Communicator> comm, CreateGlooCommunicator(env, options));
//
// Rendezvous errors: MASTER_PORT already in use on rank 0; rank 0 not reachable within the
// timeout; ranks that did not join within the timeout (named); a rank with another
// WORLD_SIZE or another rendezvous_tag (named). Collective errors name the operation and this
// rank; a dead peer surfaces as soon as its socket closes, a stuck one after the timeout.
// NCCL (CUDA LibTorch) would plug in here behind the same interface; not built in this tree.
#ifndef BACKENDS_DISTRIBUTED_GLOO_COMMUNICATOR_H_
#define BACKENDS_DISTRIBUTED_GLOO_COMMUNICATOR_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "backends/distributed/dist_env.h"
#include "moco/core/communicator.h"

namespace moco::distributed {

struct GlooOptions {
  // Rendezvous and every collective.
  std::chrono::milliseconds timeout = std::chrono::minutes(5);
  // Compared across ranks at rendezvous (e.g. a hash of the experiment config).
  std::string rendezvous_tag;
};

absl::StatusOr<std::unique_ptr<Communicator>> CreateGlooCommunicator(const DistributedEnv& env,
                                                                     const GlooOptions& options);

// A short fingerprint (16 hex digits, FNV-1a) of `text` for GlooOptions::rendezvous_tag: ranks
// whose texts (e.g. configs) differ get different tags and are refused at rendezvous.
std::string RendezvousTagOf(const std::string& text);

}  // namespace moco::distributed

#endif  // BACKENDS_DISTRIBUTED_GLOO_COMMUNICATOR_H_
