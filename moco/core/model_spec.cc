#include "moco/core/model_spec.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "moco/core/status_macros.h"

namespace moco {
namespace {

ConvSpec Conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding) {
  return ConvSpec{in, out, kernel, stride, padding};
}

// torchvision's _make_layer: the first block of a stage carries the stride and the downsample.
BlockSpec MakeBlock(BlockType type, int stage, int index, int64_t in, int64_t planes,
                    int64_t stride) {
  BlockSpec b;
  b.name = absl::StrCat("layer", stage + 1, ".", index);
  b.stage = stage;
  b.index = index;
  b.in_channels = in;
  b.planes = planes;
  b.out_channels = planes * BlockExpansion(type);
  b.stride = stride;
  if (type == BlockType::kBottleneck) {
    b.convs = {Conv(in, planes, 1, 1, 0), Conv(planes, planes, 3, stride, 1),
               Conv(planes, b.out_channels, 1, 1, 0)};
  } else {
    b.convs = {Conv(in, planes, 3, stride, 1), Conv(planes, planes, 3, 1, 1)};
  }
  b.has_downsample = stride != 1 || in != b.out_channels;
  b.downsample = Conv(in, b.out_channels, 1, stride, 0);
  return b;
}

BackboneSpec MakeBackbone(const ResNetArchitecture& arch, const ModelConfig& model) {
  BackboneSpec s;
  s.arch = arch.name;
  s.block_type = arch.block;
  s.stage_blocks = arch.blocks;
  s.cifar_stem = model.cifar_stem();
  s.width_multiplier = model.width_multiplier();
  s.in_channels = model.in_channels();
  const int64_t stem_width = ScaledWidth(kStageBaseWidths[0], s.width_multiplier);
  s.stem = s.cifar_stem ? Conv(s.in_channels, stem_width, 3, 1, 1)
                        : Conv(s.in_channels, stem_width, 7, 2, 3);
  s.has_max_pool = !s.cifar_stem;
  int64_t in = stem_width;
  for (int stage = 0; stage < kNumStages; ++stage) {
    s.planes[stage] = ScaledWidth(kStageBaseWidths[stage], s.width_multiplier);
    for (int i = 0; i < arch.blocks[stage]; ++i) {
      const int64_t stride = (stage > 0 && i == 0) ? 2 : 1;
      s.blocks.push_back(MakeBlock(arch.block, stage, i, in, s.planes[stage], stride));
      in = s.blocks.back().out_channels;
    }
  }
  s.output_dim = in;
  return s;
}

void AddConvBn(const std::string& conv, const std::string& bn, const ConvSpec& c,
               std::vector<StateEntry>* params, std::vector<StateEntry>* buffers) {
  params->push_back({conv + ".weight", {c.out_channels, c.in_channels, c.kernel, c.kernel}});
  params->push_back({bn + ".weight", {c.out_channels}});
  params->push_back({bn + ".bias", {c.out_channels}});
  buffers->push_back({bn + ".running_mean", {c.out_channels}, false});
  buffers->push_back({bn + ".running_var", {c.out_channels}, false});
  buffers->push_back({bn + ".num_batches_tracked", {}, false});
}

void AddHead(const HeadSpec& head, std::vector<StateEntry>* params,
             std::vector<StateEntry>* buffers) {
  for (int i = 0; i < head.num_layers(); ++i) {
    const std::string name = head.LinearName(i);
    const int64_t out = head.widths[i + 1];
    params->push_back({name + ".weight", {out, head.widths[i]}});
    if (head.has_bias()) params->push_back({name + ".bias", {out}});
    if (!head.HasNorm(i)) continue;
    const std::string bn = head.NormName(i);
    if (i + 1 < head.num_layers()) {  // the last BN is affine-free
      params->push_back({bn + ".weight", {out}});
      params->push_back({bn + ".bias", {out}});
    }
    buffers->push_back({bn + ".running_mean", {out}, false});
    buffers->push_back({bn + ".running_var", {out}, false});
    buffers->push_back({bn + ".num_batches_tracked", {}, false});
  }
}

absl::StatusOr<BackboneSpec> MakeViTBackbone(const ViTArchitecture& arch,
                                             const ModelConfig& model) {
  BackboneSpec s;
  s.kind = BackboneKind::kViT;
  s.arch = arch.name;
  s.in_channels = model.in_channels();
  ViTSpec& v = s.vit;
  v.image_size = model.image_size();
  v.patch_size = model.patch_size() == 0 ? arch.default_patch_size : model.patch_size();
  v.in_channels = model.in_channels();
  v.embed_dim = arch.embed_dim;
  v.depth = arch.depth;
  v.num_heads = arch.num_heads;
  v.mlp_hidden = arch.mlp_ratio * arch.embed_dim;
  v.stop_grad_conv1 = model.stop_grad_conv1();
  if (v.patch_size < 1 || v.image_size < 1 || v.image_size % v.patch_size != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model.patch_size (", v.patch_size, ") must be >= 1 and divide model.image_size (",
        v.image_size, ") for ", arch.name));
  }
  s.output_dim = v.embed_dim;
  return s;
}

void AddViT(const ViTSpec& v, std::vector<StateEntry>* params, std::vector<StateEntry>* buffers) {
  const int64_t d = v.embed_dim, p = v.patch_size;
  params->push_back({"cls_token", {1, 1, d}});
  buffers->push_back({"pos_embed", {1, v.num_tokens(), d}, false});
  std::vector<StateEntry>* patch = v.stop_grad_conv1 ? buffers : params;
  patch->push_back({"patch_embed.proj.weight", {d, v.in_channels, p, p}, !v.stop_grad_conv1});
  patch->push_back({"patch_embed.proj.bias", {d}, !v.stop_grad_conv1});
  for (int i = 0; i < v.depth; ++i) {
    const std::string b = ViTSpec::BlockName(i);
    params->push_back({b + ".norm1.weight", {d}});
    params->push_back({b + ".norm1.bias", {d}});
    params->push_back({b + ".attn.qkv.weight", {3 * d, d}});
    params->push_back({b + ".attn.qkv.bias", {3 * d}});
    params->push_back({b + ".attn.proj.weight", {d, d}});
    params->push_back({b + ".attn.proj.bias", {d}});
    params->push_back({b + ".norm2.weight", {d}});
    params->push_back({b + ".norm2.bias", {d}});
    params->push_back({b + ".mlp.fc1.weight", {v.mlp_hidden, d}});
    params->push_back({b + ".mlp.fc1.bias", {v.mlp_hidden}});
    params->push_back({b + ".mlp.fc2.weight", {d, v.mlp_hidden}});
    params->push_back({b + ".mlp.fc2.bias", {d}});
  }
  params->push_back({"norm.weight", {d}});
  params->push_back({"norm.bias", {d}});
}

HeadSpec V3Head(std::string name, std::vector<int64_t> widths, bool last_batch_norm) {
  HeadSpec head;
  head.name = std::move(name);
  head.widths = std::move(widths);
  head.batch_norm = true;
  head.last_batch_norm = last_batch_norm;
  return head;
}

}  // namespace

const std::vector<ResNetArchitecture>& ResNetArchitectures() {
  static const auto* const kArchitectures = new std::vector<ResNetArchitecture>{
      {"resnet18", BlockType::kBasic, {2, 2, 2, 2}},
      {"resnet34", BlockType::kBasic, {3, 4, 6, 3}},
      {"resnet50", BlockType::kBottleneck, {3, 4, 6, 3}},
  };
  return *kArchitectures;
}

std::vector<std::string> ResNetArchitectureNames() {
  std::vector<std::string> names;
  for (const ResNetArchitecture& a : ResNetArchitectures()) names.push_back(a.name);
  return names;
}

const ResNetArchitecture* FindResNetArchitecture(const std::string& name) {
  for (const ResNetArchitecture& a : ResNetArchitectures()) {
    if (name == a.name) return &a;
  }
  return nullptr;
}

int64_t BlockExpansion(BlockType type) { return type == BlockType::kBottleneck ? 4 : 1; }

int64_t ScaledWidth(int64_t base, double width_multiplier) {
  return std::max<int64_t>(1, std::llround(static_cast<double>(base) * width_multiplier));
}

std::string HeadSpec::LinearName(int i) const {
  return num_layers() == 1 && !batch_norm ? name : absl::StrCat(name, ".", stride() * i);
}

std::string HeadSpec::NormName(int i) const { return absl::StrCat(name, ".", stride() * i + 1); }

std::string HeadSpec::OutputName(int i) const {
  if (num_layers() == 1 && !batch_norm) return name;
  if (i + 1 < num_layers()) return absl::StrCat(name, ".", stride() * i + stride() - 1);
  return HasNorm(i) ? NormName(i) : LinearName(i);
}

absl::StatusOr<EncoderSpec> EncoderSpecFromConfig(const ModelConfig& model) {
  const ResNetArchitecture* arch = FindResNetArchitecture(model.arch());
  const ViTArchitecture* vit = FindViTArchitecture(model.arch());
  if (arch == nullptr && vit == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model.arch \"", model.arch(), "\" is not one of ",
        absl::StrJoin(ResNetArchitectureNames(), ", "), ", ",
        absl::StrJoin(ViTArchitectureNames(), ", ")));
  }
  if (model.projector_layers() < 0 || model.projector_layers() == 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model.projector_layers (", model.projector_layers(),
        ") must be 0 (the arch's default) or >= 2"));
  }
  if (!(model.width_multiplier() > 0) || !std::isfinite(model.width_multiplier())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model.width_multiplier (", model.width_multiplier(), ") must be a finite number > 0"));
  }
  if (model.in_channels() < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("model.in_channels (", model.in_channels(), ") must be >= 1"));
  }
  if (model.feature_dim() < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("model.feature_dim (", model.feature_dim(), ") must be >= 1"));
  }
  if (model.projector_hidden_dim() < 0 || model.predictor_hidden_dim() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model.", model.projector_hidden_dim() < 0 ? "projector" : "predictor",
        "_hidden_dim (", std::min(model.projector_hidden_dim(), model.predictor_hidden_dim()),
        ") must be >= 0"));
  }
  if (model.predictor_hidden_dim() > 0 && model.projector_hidden_dim() == 0) {
    return absl::InvalidArgumentError(
        "model.predictor_hidden_dim needs the v3 projector: set model.projector_hidden_dim > 0");
  }
  if (vit != nullptr && (model.cifar_stem() || model.zero_init_residual() ||
                         model.width_multiplier() != 1.0f)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model.", model.cifar_stem() ? "cifar_stem" : model.zero_init_residual()
                                                         ? "zero_init_residual"
                                                         : "width_multiplier",
        " is a ResNet option; model.arch ", model.arch(), " is a ViT (leave it unset)"));
  }
  if (vit == nullptr && (model.patch_size() != 0 || model.stop_grad_conv1())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model.", model.patch_size() != 0 ? "patch_size" : "stop_grad_conv1",
        " is a ViT option; model.arch ", model.arch(), " is a ResNet (leave it unset)"));
  }
  EncoderSpec spec;
  if (vit != nullptr) {
    ASSIGN_OR_RETURN(spec.backbone, MakeViTBackbone(*vit, model));
    if (spec.backbone.vit.embed_dim % spec.backbone.vit.num_heads != 0 ||
        spec.backbone.vit.embed_dim % 4 != 0) {
      return absl::InternalError(absl::StrCat("ViT table entry ", vit->name, " is inconsistent"));
    }
    spec.projector.name = "head";
  } else {
    spec.backbone = MakeBackbone(*arch, model);
    spec.backbone.zero_init_residual = model.zero_init_residual();
  }
  const int64_t width = spec.backbone.output_dim;
  const int64_t dim = model.feature_dim();
  if (model.projector_hidden_dim() > 0) {
    // v3: w -> hidden [BN, ReLU] (x layers - 1) -> dim [BN affine=False]; predictor
    // dim -> hidden -> dim. moco-v3: 2 projector layers for ResNet, 3 for ViT.
    const int layers = model.projector_layers() != 0 ? model.projector_layers()
                                                     : (vit != nullptr ? 3 : 2);
    std::vector<int64_t> widths = {width};
    for (int i = 0; i + 1 < layers; ++i) widths.push_back(model.projector_hidden_dim());
    widths.push_back(dim);
    spec.projector = V3Head(spec.projector.name, std::move(widths), true);
    if (model.predictor_hidden_dim() > 0) {
      spec.predictor = V3Head("predictor", {dim, model.predictor_hidden_dim(), dim}, false);
    }
    return spec;
  }
  // v2: Linear(w, w), ReLU, Linear(w, dim) (hidden = backbone width); v1: Linear(w, dim).
  spec.projector.widths = model.mlp_head() ? std::vector<int64_t>{width, width, dim}
                                           : std::vector<int64_t>{width, dim};
  return spec;
}

absl::StatusOr<EncoderSpec> EncoderSpecForEncoder(const ModelConfig& model, int bn_splits,
                                                  bool with_predictor) {
  if (bn_splits < 1) {
    return absl::InvalidArgumentError(absl::StrCat("bn_splits (", bn_splits, ") must be >= 1"));
  }
  ASSIGN_OR_RETURN(EncoderSpec spec, EncoderSpecFromConfig(model));
  if (!with_predictor) spec.predictor.reset();
  if (bn_splits > 1 && spec.projector.batch_norm) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bn_splits (", bn_splits, ") must be 1 for the v3 heads (model.projector_hidden_dim > 0):"
        " their BatchNorm normalizes over the whole batch"));
  }
  return spec;
}

std::vector<StateEntry> EncoderStateLayout(const EncoderSpec& spec) {
  std::vector<StateEntry> params, buffers;
  const BackboneSpec& b = spec.backbone;
  if (b.is_vit()) AddViT(b.vit, &params, &buffers);
  if (!b.is_vit()) AddConvBn("conv1", "bn1", b.stem, &params, &buffers);
  for (const BlockSpec& block : b.blocks) {
    for (size_t i = 0; i < block.convs.size(); ++i) {
      AddConvBn(absl::StrCat(block.name, ".conv", i + 1), absl::StrCat(block.name, ".bn", i + 1),
                block.convs[i], &params, &buffers);
    }
    if (block.has_downsample) {
      AddConvBn(block.name + ".downsample.0", block.name + ".downsample.1", block.downsample,
                &params, &buffers);
    }
  }
  AddHead(spec.projector, &params, &buffers);
  if (spec.predictor) AddHead(*spec.predictor, &params, &buffers);
  params.insert(params.end(), buffers.begin(), buffers.end());
  return params;
}

}  // namespace moco
