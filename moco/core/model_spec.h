// The encoder architecture as data: the one place that knows the ResNet table (block type and
// block counts per arch), stage widths, width-multiplier rounding, torchvision's module names and
// the backbone / feature dimensions. Both backends build their networks from an EncoderSpec; the
// config validator and the FLOP counter read the same table.
//
// An encoder is a backbone plus a projector head (MoCo's "fc"), plus an optional predictor head
// (MoCo v3's query encoder). The backbone is a ResNet or a ViT (moco/core/vit_spec.h).
//
//   ASSIGN_OR_RETURN(EncoderSpec spec, EncoderSpecFromConfig(config.model()));
//   for (const BlockSpec& block : spec.backbone.blocks) ...   // "layer1.0", ..., in order
//   spec.backbone.output_dim                                   // pooled feature width
//   spec.projector.LinearName(0)                               // "fc" or "fc.0"
#ifndef MOCO_CORE_MODEL_SPEC_H_
#define MOCO_CORE_MODEL_SPEC_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "moco/config/config.pb.h"
#include "moco/core/vit_spec.h"

namespace moco {

// torchvision's BasicBlock (two 3x3 convs, expansion 1) or Bottleneck (1x1, 3x3, 1x1,
// expansion 4; the stride on the 3x3 conv: "ResNet v1.5").
enum class BlockType { kBasic, kBottleneck };

inline constexpr int kNumStages = 4;
// Stage widths (planes) at width multiplier 1; the stem has the first stage's width.
inline constexpr std::array<int64_t, kNumStages> kStageBaseWidths = {64, 128, 256, 512};

struct ResNetArchitecture {
  const char* name;  // "resnet18"
  BlockType block;
  std::array<int, kNumStages> blocks;  // blocks per stage
};

// The supported architectures, in order: resnet18, resnet34, resnet50.
const std::vector<ResNetArchitecture>& ResNetArchitectures();
std::vector<std::string> ResNetArchitectureNames();
// Null for an unknown name.
const ResNetArchitecture* FindResNetArchitecture(const std::string& name);

// Output channels per "planes": 1 (BasicBlock) or 4 (Bottleneck).
int64_t BlockExpansion(BlockType type);

// A scaled width: max(1, round(base * width_multiplier)), halves rounded away from zero, in
// double precision (a float multiplier is widened first).
int64_t ScaledWidth(int64_t base, double width_multiplier);

// One bias-free convolution followed by a BatchNorm.
struct ConvSpec {
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t kernel = 1;
  int64_t stride = 1;
  int64_t padding = 0;
};

// One residual block. Its main path is `convs` (module names "<name>.conv<i+1>" and
// "<name>.bn<i+1>", ReLU after every BN but the last); the shortcut is the identity, or with
// `downsample` a 1x1 conv + BN ("<name>.downsample.0", "<name>.downsample.1"). The block output
// is ReLU(main + shortcut).
struct BlockSpec {
  std::string name;  // "layer<stage+1>.<index>"
  int stage = 0;
  int index = 0;
  int64_t in_channels = 0;
  int64_t planes = 0;
  int64_t out_channels = 0;  // planes * expansion
  int64_t stride = 1;        // 2 for the first block of stages 2-4
  std::vector<ConvSpec> convs;
  bool has_downsample = false;  // stride != 1 or in_channels != out_channels
  ConvSpec downsample;          // 1x1, `stride`, in_channels -> out_channels
};

enum class BackboneKind { kResNet, kViT };

// A ResNet (the fields below) or a ViT (`vit`; the ResNet fields are then unused but
// in_channels, output_dim and arch).
struct BackboneSpec {
  BackboneKind kind = BackboneKind::kResNet;
  ViTSpec vit;
  bool is_vit() const { return kind == BackboneKind::kViT; }
  std::string arch;  // "resnet18"
  BlockType block_type = BlockType::kBasic;
  std::array<int, kNumStages> stage_blocks = {};
  bool cifar_stem = false;  // 3x3 stride-1 conv1 and no max pool (else 7x7/2 + 3x3/2 max pool)
  double width_multiplier = 1;
  int64_t in_channels = 3;
  ConvSpec stem;                              // "conv1" / "bn1"
  bool has_max_pool = true;                   // "maxpool": 3x3, stride 2, padding 1
  std::array<int64_t, kNumStages> planes = {};  // scaled stage widths
  std::vector<BlockSpec> blocks;              // every stage's blocks, in execution order
  int64_t output_dim = 0;                     // pooled features: the last block's out_channels
  // torchvision's zero_init_residual: the last BN weight of every block starts at 0.
  bool zero_init_residual = false;
};

// A head of Linear layers, torchvision/MoCo-named. v1/v2 (batch_norm false): Linear layers with
// bias and ReLUs between them; one layer is the module itself ("fc": the v1 head), several form a
// Sequential(Linear, ReLU, Linear, ...) ("fc.0", "fc.2", ...: the v2 MLP head). v3
// (batch_norm true, moco-v3's _build_mlp): bias-free Linear layers, each hidden one followed by
// BatchNorm1d and ReLU, Sequential(Linear, BN, ReLU, Linear, [BN(affine=False)]) ("fc.0",
// "fc.1", "fc.3", "fc.4"), the last BN only with last_batch_norm.
struct HeadSpec {
  std::string name = "fc";  // ViT projectors: "head" (the module moco-v3 replaces)
  std::vector<int64_t> widths;  // {in, out} or {in, hidden, ..., out}
  bool batch_norm = false;       // v3 head (see above)
  bool last_batch_norm = false;  // v3 projector: BatchNorm1d(affine=False) after the last Linear

  int num_layers() const { return static_cast<int>(widths.size()) - 1; }
  int64_t in_dim() const { return widths.front(); }
  int64_t out_dim() const { return widths.back(); }
  bool has_bias() const { return !batch_norm; }
  // Sequential modules per hidden layer: 2 (Linear, ReLU) or 3 (Linear, BN, ReLU).
  int stride() const { return batch_norm ? 3 : 2; }
  // Module name of Linear layer i: "fc" (one layer without BN), else "fc.<stride * i>".
  std::string LinearName(int i) const;
  // Module name of the BatchNorm after Linear i (hidden layers, and the last with
  // last_batch_norm): "fc.<stride * i + 1>".
  std::string NormName(int i) const;
  // Whether Linear i is followed by a BatchNorm.
  bool HasNorm(int i) const {
    return batch_norm && (i + 1 < num_layers() || last_batch_norm);
  }
  // Name of layer i's output in activation captures: "fc" (one layer), else the module that
  // ends the layer: the ReLU for hidden layers ("fc.1" v2, "fc.2" v3), for the last one its BN
  // if any, else its Linear.
  std::string OutputName(int i) const;
};

struct EncoderSpec {
  BackboneSpec backbone;
  HeadSpec projector;
  std::optional<HeadSpec> predictor;  // MoCo v3's query-side head ("predictor.*")

  // The encoder's output width (before L2 normalization).
  int64_t feature_dim() const { return (predictor ? *predictor : projector).out_dim(); }
};

// InvalidArgument naming the model.* field for an unknown arch, a width_multiplier that is not a
// finite number > 0, in_channels < 1, feature_dim < 1, a negative head width or a predictor
// without the v3 projector.
absl::StatusOr<EncoderSpec> EncoderSpecFromConfig(const ModelConfig& model);

// The spec of one encoder a backend builds (Backend::CreateEncoder): EncoderSpecFromConfig,
// without the predictor unless `with_predictor` (key encoders never have one). InvalidArgument
// for bn_splits < 1, or bn_splits > 1 with BatchNorm in a head (v3 heads normalize over the
// whole batch; shuffling BN splits only the backbone's BatchNorms).
absl::StatusOr<EncoderSpec> EncoderSpecForEncoder(const ModelConfig& model, int bn_splits,
                                                  bool with_predictor);

// One entry of an encoder's state (Encoder::ExportState): torchvision's / timm's state_dict name
// and shape. Buffers (state no optimizer touches) are BN running_mean, running_var and
// num_batches_tracked (shape {}), and a ViT's frozen tensors: pos_embed, and patch_embed.proj.*
// under stop_grad_conv1 (moco-v3 keeps them as parameters with requires_grad False).
struct StateEntry {
  std::string name;
  std::vector<int64_t> shape;
  bool is_parameter = true;
};

// Every parameter in torchvision's / timm's module order (named_parameters()), then every buffer.
std::vector<StateEntry> EncoderStateLayout(const EncoderSpec& spec);

}  // namespace moco

#endif  // MOCO_CORE_MODEL_SPEC_H_
