// Everything the MoCo v1/v2 queue step trains or keeps, built from a config on a backend, and its
// export to / import from checkpoint arrays (the layout of wave-1 checkpoints, unchanged).
//
// Checkpoint array names: "query/<param>", "key/<param>" (both encoders, parameters and BN
// buffers), "queue/queue", "queue/queue_ptr", "optimizer/<param>" (SGD momentum buffers); with loss scaling also "loss_scale/scale",
// "loss_scale/growth_tracker", "loss_scale/skipped_steps".
//
//   ASSIGN_OR_RETURN(auto state, MocoQueueState::Create(config, *backend));
//   MocoStep step = state->MakeStep();
#ifndef MOCO_METHODS_MOCO_QUEUE_STATE_H_
#define MOCO_METHODS_MOCO_QUEUE_STATE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "moco/core/backend.h"
#include "moco/config/config.pb.h"
#include "moco/core/host_array.h"
#include "moco/methods/loss_scaling.h"
#include "moco/methods/moco_step.h"

namespace moco {

struct MocoQueueState {
  Backend* backend = nullptr;  // not owned
  std::unique_ptr<Encoder> query;
  std::unique_ptr<Encoder> key;  // initialized as a copy of query (parameters and buffers)
  std::unique_ptr<KeyQueue> queue;
  std::unique_ptr<ContrastiveLoss> loss;
  std::unique_ptr<Optimizer> optimizer;  // bound to query
  MocoConfig moco_config;
  LossScaling loss_scaling;  // backend.loss_scaling; checkpointed as "loss_scale/..." when on

  // A freshly initialized state (weights from run.seed) on `backend`, which must outlive it.
  static absl::StatusOr<std::unique_ptr<MocoQueueState>> Create(const ExperimentConfig& config,
                                                                Backend& backend);

  MocoStep MakeStep();

  absl::StatusOr<NamedArrays> Export() const;
  // Restores a state written by Export() (any backend's). Errors name the first array that is
  // missing, unexpected or mis-shaped, with its prefix.
  absl::Status Import(const NamedArrays& arrays);
};


}  // namespace moco

#endif  // MOCO_METHODS_MOCO_QUEUE_STATE_H_
