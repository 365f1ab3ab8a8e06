// Weights files (weights_file.h: native, official MoCo, torchvision, detectron2) into live
// encoders. The one place in moco/interop that touches the Encoder API.
//
// For pretraining (model.init_from), on a fresh start the Trainer replaces the encoders (and the
// queue) in its method's state:
//   ASSIGN_OR_RETURN(state, interop::StateWithWeightsFromFile(path, std::move(state)));
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

// Pretraining init on a training method's state (named arrays "query/...", "key/...",
// "queue/...", "optimizer/...", as TrainingMethod::ExportState gives): "query/" from the file's
// query encoder; "key/" from the file's key encoder when it has one, else from its query
// encoder; "queue/queue" and "queue/queue_ptr" from the file's queue when both have one (else the
// state's fresh queue stays); optimizer state untouched. A file without a head (torchvision,
// detectron2) keeps the state's heads. InvalidArgument naming `path`, the first mismatching name
// and both shapes when the file does not fit the state's architecture.
absl::StatusOr<NamedArrays> StateWithWeightsFromFile(const std::string& path, NamedArrays state);

}  // namespace interop
}  // namespace moco

#endif  // MOCO_INTEROP_ENCODER_INIT_H_
