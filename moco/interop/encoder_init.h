// Weights files (weights_file.h: native, official MoCo, torchvision, detectron2) into live
// encoders. The one place in moco/interop that touches the Encoder API.
//
// For pretraining (model.init_from): the Trainer calls, after creating its state,
//   RETURN_IF_ERROR(interop::InitFromFile(config.model().init_from(), *query, *key, queue));
#ifndef MOCO_INTEROP_ENCODER_INIT_H_
#define MOCO_INTEROP_ENCODER_INIT_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "moco/config/config.pb.h"
#include "moco/core/backend.h"
#include "moco/core/encoder.h"
#include "moco/core/host_array.h"
#include "moco/core/key_queue.h"

namespace moco {
namespace interop {

// The state of a fresh `backend` encoder of `model` initialized from `seed`: the
// architecture's names and shapes (and a freshly initialized head).
absl::StatusOr<NamedArrays> ArchitectureState(Backend& backend, const ModelConfig& model,
                                              uint64_t seed = 0);

// Imports `state` into `encoder`. A state without any fc.* entry (torchvision, detectron2
// files) keeps the encoder's own head. InvalidArgument (MatchArchitecture: `label`, the first
// mismatching name and both shapes) when names or shapes differ; the encoder is then unchanged.
absl::Status ImportEncoderState(const NamedArrays& state, Encoder& encoder, const std::string& label);

// The query encoder of the file at `path` (any format) into `encoder`, as ImportEncoderState.
absl::Status InitEncoderFromFile(const std::string& path, Encoder& encoder);

// Pretraining init: `query` from the file's query encoder; `key` from the file's key encoder
// when it has one, else a copy of the (new) query state; `queue` (may be null) from the file's
// queue when it has one, else left as it is (re-initialized).
absl::Status InitFromFile(const std::string& path, Encoder& query, Encoder& key, KeyQueue* queue);

}  // namespace interop
}  // namespace moco

#endif  // MOCO_INTEROP_ENCODER_INIT_H_
