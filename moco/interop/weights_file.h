// Weights files in every format the project reads and writes, detected by their magic bytes
// (never by extension):
//   native       "MOCOCKPT": the project's checkpoint (moco/run/checkpoint.h);
//   moco         a torch.save file (zip "PK\3\4" or legacy pickle) in the official MoCo layout;
//   torchvision  a torch.save file holding a torchvision state_dict;
//   detectron2   a plain pickle in the official detectron2 converter's layout.
// (layouts.h describes the three PyTorch layouts.)
//
//   ASSIGN_OR_RETURN(WeightsFile in, ReadWeightsFile("moco_v2_800ep_pretrain.pth.tar"));
//   ASSIGN_OR_RETURN(ModelConfig model, InferModelConfig(in.weights.query, in.weights.arch));
//   RETURN_IF_ERROR(WriteWeightsFile("r50.pth", Format::kTorchvision, in.weights, config));
#ifndef MOCO_INTEROP_WEIGHTS_FILE_H_
#define MOCO_INTEROP_WEIGHTS_FILE_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "moco/config/config.pb.h"
#include "moco/core/host_array.h"
#include "moco/interop/layouts.h"
#include "moco/run/checkpoint.h"

namespace moco {
namespace interop {

enum class Format { kNative, kMoco, kMocoV3, kTorchvision, kDetectron2, kTimm };
// "native", "moco", "moco_v3", "torchvision", "detectron2", "timm".
absl::StatusOr<Format> ParseFormat(const std::string& name);
const char* FormatName(Format format);

struct WeightsFile {
  Format format = Format::kNative;
  MocoWeights weights;
  std::optional<ExperimentConfig> config;  // native files: the run's config
  std::optional<Checkpoint> native;        // native files: everything else they hold
};

// Reads any of the four formats. Errors name `path`: unreadable, unknown magic, refused
// pickle content, a layout that fits none of the readers.
absl::StatusOr<WeightsFile> ReadWeightsFile(const std::string& path);

// Native checkpoint arrays ("query/", "key/", "queue/", "optimizer/") <-> MocoWeights.
MocoWeights FromNativeCheckpoint(const Checkpoint& checkpoint, const ExperimentConfig& config);
// A missing key encoder becomes a copy of the query encoder; queue and optimizer state are
// written only when present.
Checkpoint ToNativeCheckpoint(const MocoWeights& weights, const ExperimentConfig& config);

// Writes `weights` as `format` to `path` atomically (temporary file + rename: on any error
// nothing is written). `config` is stored in native files and gives the official optimizer
// state its hyper-parameters' defaults. with_optimizer=false leaves the SGD state out of moco
// files: its param_groups hold Python floats, which torch 1.13's torch.load(weights_only=True)
// refuses (BINFLOAT), as it refuses torch's own checkpoints with optimizer state.
absl::Status WriteWeightsFile(const std::string& path, Format format, const MocoWeights& weights,
                              const ExperimentConfig& config, bool with_optimizer = true);

// The architecture that names and shapes imply: arch from the blocks (conv3 -> resnet50;
// 2 or 6 blocks in layer3 -> resnet18 / resnet34; `arch_hint` must agree when set), width from
// conv1's output channels / 64, cifar_stem from a 3x3 conv1, in_channels, head from fc.* (no
// fc: mlp_head true, feature_dim 128). InvalidArgument when conv1.weight is missing or the
// blocks fit no supported arch.
absl::StatusOr<ModelConfig> InferModelConfig(const NamedArrays& query, const std::string& arch_hint);

// OK when `got` holds exactly `expected`'s names with the same shapes; otherwise
// InvalidArgument with `label` and the first mismatching name (torchvision order) and both
// shapes. With allow_missing_head, a `got` without any fc.* entry passes without them.
absl::Status MatchArchitecture(const NamedArrays& expected, const NamedArrays& got,
                               bool allow_missing_head, const std::string& label);

}  // namespace interop
}  // namespace moco

#endif  // MOCO_INTEROP_WEIGHTS_FILE_H_
