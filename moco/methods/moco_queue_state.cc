#include "moco/methods/moco_queue_state.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "moco/core/optimizer_factory.h"
#include "moco/core/status_macros.h"
#include "moco/methods/state_prefix.h"

namespace moco {

absl::StatusOr<std::unique_ptr<MocoQueueState>> MocoQueueState::Create(
    const ExperimentConfig& config, Backend& backend) {
  auto state = std::make_unique<MocoQueueState>();
  state->moco_config = config.moco();
  state->backend = &backend;
  ASSIGN_OR_RETURN(state->loss_scaling, LossScaling::FromConfig(config.backend()));
  const uint64_t seed = config.run().seed();
  EncoderOptions encoder_options;
  encoder_options.bn_splits = config.moco().bn_splits();
  ASSIGN_OR_RETURN(state->query,
                   state->backend->CreateEncoder(config.model(), seed, encoder_options));
  ASSIGN_OR_RETURN(state->key,
                   state->backend->CreateEncoder(config.model(), seed, encoder_options));
  ASSIGN_OR_RETURN(NamedArrays query_state, state->query->ExportState());
  RETURN_IF_ERROR(state->key->ImportState(query_state));
  ASSIGN_OR_RETURN(state->queue,
                   state->backend->CreateQueue(config.moco().queue_size(),
                                               config.model().feature_dim(), seed + 1));
  ASSIGN_OR_RETURN(state->loss, state->backend->CreateInfoNceLoss());
  ASSIGN_OR_RETURN(state->optimizer,
                   CreateOptimizer(backend, *state->query, config.optimizer()));
  return state;
}

MocoStep MocoQueueState::MakeStep() {
  MocoStep step(*backend, *query, *key, *queue, *loss, *optimizer, moco_config);
  if (loss_scaling.enabled()) step.UseLossScaling(&loss_scaling);
  return step;
}

absl::StatusOr<NamedArrays> MocoQueueState::Export() const {
  NamedArrays arrays;
  ASSIGN_OR_RETURN(NamedArrays query_state, query->ExportState());
  ASSIGN_OR_RETURN(NamedArrays key_state, key->ExportState());
  AddWithPrefix(query_state, "query/", arrays);
  AddWithPrefix(key_state, "key/", arrays);
  AddWithPrefix(queue->ExportState(), "queue/", arrays);
  AddWithPrefix(optimizer->ExportState(), "optimizer/", arrays);
  loss_scaling.ExportTo(arrays);
  return arrays;
}

absl::Status MocoQueueState::Import(const NamedArrays& arrays) {
  for (const auto& [name, array] : arrays) {
    if (!absl::StartsWith(name, "query/") && !absl::StartsWith(name, "key/") &&
        !absl::StartsWith(name, "queue/") && !absl::StartsWith(name, "optimizer/") &&
        !absl::StartsWith(name, LossScaling::kPrefix)) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected array '", name, "'"));
    }
  }
  RETURN_IF_ERROR(AnnotateStatus(query->ImportState(SelectPrefix(arrays, "query/")), "query encoder"));
  RETURN_IF_ERROR(AnnotateStatus(key->ImportState(SelectPrefix(arrays, "key/")), "key encoder"));
  RETURN_IF_ERROR(AnnotateStatus(queue->ImportState(SelectPrefix(arrays, "queue/")), "queue"));
  RETURN_IF_ERROR(
      AnnotateStatus(optimizer->ImportState(SelectPrefix(arrays, "optimizer/")), "optimizer"));
  return loss_scaling.ImportFrom(arrays);
}

}  // namespace moco
