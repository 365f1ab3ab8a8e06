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

absl::Status InitFromFile(const std::string& path, Encoder& query, Encoder& key, KeyQueue* queue) {
  ASSIGN_OR_RETURN(WeightsFile file, ReadWeightsFile(path));
  const std::string what = absl::StrCat(path, " (", FormatName(file.format), ")");
  RETURN_IF_ERROR(ImportEncoderState(file.weights.query, query, what + " query encoder"));
  if (!file.weights.key.empty()) {
    RETURN_IF_ERROR(ImportEncoderState(file.weights.key, key, what + " key encoder"));
  } else {
    ASSIGN_OR_RETURN(NamedArrays q, Export(query));
    RETURN_IF_ERROR(key.ImportState(q));
  }
  if (queue != nullptr && file.weights.queue) {
    NamedArrays state;
    state["queue"] = *file.weights.queue;
    state["queue_ptr"] = file.weights.queue_ptr ? *file.weights.queue_ptr : HostArray({1}, {0.0f});
    const absl::Status s = queue->ImportState(state);
    if (!s.ok()) return absl::Status(s.code(), absl::StrCat(what, " queue: ", s.message()));
  }
  return absl::OkStatus();
}

}  // namespace interop
}  // namespace moco
