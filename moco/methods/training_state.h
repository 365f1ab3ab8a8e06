// Everything a MoCo run computes with, built from a config through a backend, and its
// export to / import from checkpoint arrays.
//
// Checkpoint array names: "query/<param>", "key/<param>" (both encoders, parameters and BN
// buffers), "queue/queue", "queue/queue_ptr", "optimizer/<param>" (SGD momentum buffers).
//
//   ASSIGN_OR_RETURN(auto state, TrainingState::Create(config));
//   MocoStep step = state->MakeStep();
#ifndef MOCO_METHODS_TRAINING_STATE_H_
#define MOCO_METHODS_TRAINING_STATE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "moco/core/backend.h"
#include "moco/config/config.pb.h"
#include "moco/core/host_array.h"
#include "moco/methods/moco_step.h"

namespace moco {

struct TrainingState {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Encoder> query;
  std::unique_ptr<Encoder> key;  // initialized as a copy of query (parameters and buffers)
  std::unique_ptr<KeyQueue> queue;
  std::unique_ptr<ContrastiveLoss> loss;
  std::unique_ptr<Optimizer> optimizer;  // bound to query
  MocoConfig moco_config;

  // Creates the backend named in config.backend and a freshly initialized run (weights from
  // run.seed). Errors come from the registry (unknown backend) or the backend.
  static absl::StatusOr<std::unique_ptr<TrainingState>> Create(const ExperimentConfig& config);

  MocoStep MakeStep();

  absl::StatusOr<NamedArrays> Export() const;
  // Restores a state written by Export() (any backend's). Errors name the first array that is
  // missing, unexpected or mis-shaped, with its prefix.
  absl::Status Import(const NamedArrays& arrays);
};

// Entries of `arrays` whose name starts with `prefix`, with the prefix removed.
NamedArrays SelectPrefix(const NamedArrays& arrays, const std::string& prefix);

}  // namespace moco

#endif  // MOCO_METHODS_TRAINING_STATE_H_
