#include "moco/methods/moco_queue_state.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "moco/core/optimizer_factory.h"
#include "moco/core/status_macros.h"

namespace moco {
namespace {

void AddWithPrefix(const NamedArrays& from, const std::string& prefix, NamedArrays& to) {
  for (const auto& [name, array] : from) to[prefix + name] = array;
}

absl::Status Annotate(const absl::Status& status, const std::string& what) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(what, ": ", status.message()));
}

}  // namespace

NamedArrays SelectPrefix(const NamedArrays& arrays, const std::string& prefix) {
  NamedArrays out;
  for (const auto& [name, array] : arrays) {
    if (absl::StartsWith(name, prefix)) out[name.substr(prefix.size())] = array;
  }
  return out;
}

absl::StatusOr<std::unique_ptr<MocoQueueState>> MocoQueueState::Create(
    const ExperimentConfig& config, Backend& backend) {
  auto state = std::make_unique<MocoQueueState>();
  state->moco_config = config.moco();
  state->backend = &backend;
  const uint64_t seed = config.run().seed();
  ASSIGN_OR_RETURN(state->query, state->backend->CreateEncoder(config.model(), seed));
  ASSIGN_OR_RETURN(state->key, state->backend->CreateEncoder(config.model(), seed));
  RETURN_IF_ERROR(state->key->ImportState(state->query->ExportState()));
  ASSIGN_OR_RETURN(state->queue,
                   state->backend->CreateQueue(config.moco().queue_size(),
                                               config.model().feature_dim(), seed + 1));
  ASSIGN_OR_RETURN(state->loss, state->backend->CreateInfoNceLoss());
  ASSIGN_OR_RETURN(state->optimizer,
                   CreateOptimizer(backend, *state->query, config.optimizer()));
  return state;
}

MocoStep MocoQueueState::MakeStep() {
  return MocoStep(*backend, *query, *key, *queue, *loss, *optimizer, moco_config);
}

absl::StatusOr<NamedArrays> MocoQueueState::Export() const {
  NamedArrays arrays;
  AddWithPrefix(query->ExportState(), "query/", arrays);
  AddWithPrefix(key->ExportState(), "key/", arrays);
  AddWithPrefix(queue->ExportState(), "queue/", arrays);
  AddWithPrefix(optimizer->ExportState(), "optimizer/", arrays);
  return arrays;
}

absl::Status MocoQueueState::Import(const NamedArrays& arrays) {
  for (const auto& [name, array] : arrays) {
    if (!absl::StartsWith(name, "query/") && !absl::StartsWith(name, "key/") &&
        !absl::StartsWith(name, "queue/") && !absl::StartsWith(name, "optimizer/")) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected array '", name, "'"));
    }
  }
  RETURN_IF_ERROR(Annotate(query->ImportState(SelectPrefix(arrays, "query/")), "query encoder"));
  RETURN_IF_ERROR(Annotate(key->ImportState(SelectPrefix(arrays, "key/")), "key encoder"));
  RETURN_IF_ERROR(Annotate(queue->ImportState(SelectPrefix(arrays, "queue/")), "queue"));
  return Annotate(optimizer->ImportState(SelectPrefix(arrays, "optimizer/")), "optimizer");
}

}  // namespace moco
