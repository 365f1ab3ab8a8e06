// Reading a pretraining checkpoint for evaluation and building the encoders to evaluate: the
// checkpoint's query encoder (as the official protocol evaluates) and a randomly initialized
// encoder of the same architecture (the baseline).
//
//   ASSIGN_OR_RETURN(EvalCheckpoint ckpt, ReadEvalCheckpoint("runs/quickstart/checkpoint.ckpt"));
//   ASSIGN_OR_RETURN(auto backend, CreateBackend("torch", {}));
//   ASSIGN_OR_RETURN(auto learned, CreateLearnedEncoder(*backend, ckpt));
//   ASSIGN_OR_RETURN(auto random, backend->CreateEncoder(ckpt.config.model(), /*seed=*/0));
#ifndef EVAL_CHECKPOINT_ENCODER_H_
#define EVAL_CHECKPOINT_ENCODER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "moco/core/backend.h"
#include "moco/config/config.pb.h"
#include "moco/core/encoder.h"
#include "moco/core/host_array.h"
#include "moco/run/checkpoint.h"

namespace moco {
namespace eval {

// The array-name prefix of the query encoder in pretraining checkpoints.
inline constexpr char kQueryPrefix[] = "query/";

struct EvalCheckpoint {
  std::string path;
  int64_t epoch = 0;
  int64_t global_step = 0;
  std::string backend;         // the backend that wrote it
  ExperimentConfig config;     // parsed from the checkpoint's config_text
  NamedArrays query_state;     // the "query/" arrays with the prefix removed
};

// Reads `path` (moco/run/checkpoint.h ReadCheckpoint: missing, truncated, corrupt files are
// errors naming the file), parses its experiment config and takes out the query encoder's
// arrays. A file that is not a native checkpoint (by its magic bytes) is read as a PyTorch
// file (moco/interop/weights_file.h: official MoCo checkpoint, either torch.save format, or a
// torchvision / detectron2 backbone); its config holds only the model its names and shapes
// imply (InferModelConfig). Errors name `path`: an unparsable config_text (InvalidArgument) or no "query/" arrays
// (InvalidArgument: not a pretraining checkpoint).
absl::StatusOr<EvalCheckpoint> ReadEvalCheckpoint(const std::string& path);

// A `backend` encoder of the checkpoint's architecture (config.model) holding its query
// state. InvalidArgument naming the checkpoint file and the first missing, unexpected or
// mis-shaped parameter when the arrays do not fit that architecture.
absl::StatusOr<std::unique_ptr<Encoder>> CreateLearnedEncoder(Backend& backend,
                                                              const EvalCheckpoint& checkpoint);

// True when `a` and `b` hold the same names, shapes and bitwise-identical values; otherwise
// false with the first difference described in `*difference` (if not null).
bool BitwiseEqual(const NamedArrays& a, const NamedArrays& b, std::string* difference);

}  // namespace eval
}  // namespace moco

#endif  // EVAL_CHECKPOINT_ENCODER_H_
