#include "moco/interop/encoder_init.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "moco/core/status_macros.h"
#include "moco/interop/weights_file.h"

namespace moco {
namespace interop {
namespace {

// Works whether Encoder::ExportState returns NamedArrays or absl::StatusOr<NamedArrays>.
absl::StatusOr<NamedArrays> Export(const Encoder& encoder) {
  absl::StatusOr<NamedArrays> state = encoder.ExportState();
  return state;
}

}  // namespace

absl::StatusOr<NamedArrays> ArchitectureState(Backend& backend, const ModelConfig& model,
                                              uint64_t seed) {
  ASSIGN_OR_RETURN(std::unique_ptr<Encoder> encoder, backend.CreateEncoder(model, seed));
  return Export(*encoder);
}

absl::Status ImportEncoderState(const NamedArrays& state, Encoder& encoder,
                                const std::string& label) {
  ASSIGN_OR_RETURN(NamedArrays current, Export(encoder));
  RETURN_IF_ERROR(MatchArchitecture(current, state, /*allow_missing_head=*/true, label));
  NamedArrays merged = state;
  for (auto& [name, array] : current) {
    if (absl::StartsWith(name, "fc.") && !merged.count(name)) merged[name] = std::move(array);
  }
  return encoder.ImportState(merged);
}

absl::Status InitEncoderFromFile(const std::string& path, Encoder& encoder) {
  ASSIGN_OR_RETURN(WeightsFile file, ReadWeightsFile(path));
  return ImportEncoderState(file.weights.query, encoder,
                            absl::StrCat(path, " (", FormatName(file.format), ") query encoder"));
}

namespace {

// Overwrites the `prefix` entries of `state` with `weights` after checking that they describe
// the same architecture (a missing head keeps the state's).
absl::Status ReplacePrefixed(const std::string& prefix, const NamedArrays& weights,
                             const std::string& label, NamedArrays& state) {
  NamedArrays current;
  for (const auto& [name, array] : state) {
    if (absl::StartsWith(name, prefix)) current[name.substr(prefix.size())] = array;
  }
  RETURN_IF_ERROR(MatchArchitecture(current, weights, /*allow_missing_head=*/true, label));
  for (const auto& [name, array] : weights) state[prefix + name] = array;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<NamedArrays> StateWithWeightsFromFile(const std::string& path, NamedArrays state) {
  ASSIGN_OR_RETURN(WeightsFile file, ReadWeightsFile(path));
  const std::string what = absl::StrCat(path, " (", FormatName(file.format), ")");
  const MocoWeights& w = file.weights;
  RETURN_IF_ERROR(ReplacePrefixed("query/", w.query, what + " query encoder", state));
  if (w.key.empty()) {
    RETURN_IF_ERROR(ReplacePrefixed("key/", w.query, what + " query encoder as key", state));
  } else {
    RETURN_IF_ERROR(ReplacePrefixed("key/", w.key, what + " key encoder", state));
  }
  auto queue = state.find("queue/queue");
  if (w.queue.has_value() && queue != state.end()) {
    if (w.queue->shape() != queue->second.shape()) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": its queue has shape ", ShapeToString(w.queue->shape()),
          " but moco.queue_size and model.feature_dim need ", ShapeToString(queue->second.shape())));
    }
    queue->second = *w.queue;
    state["queue/queue_ptr"] = w.queue_ptr.has_value() ? *w.queue_ptr : HostArray({1}, {0.0f});
  }
  return state;
}

}  // namespace interop
}  // namespace moco
