#include "moco/interop/weights_file.h"

#include <array>
#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "moco/config/config_io.h"
#include "moco/core/model_spec.h"
#include "moco/core/status_macros.h"
#include "moco/interop/torch_file.h"

namespace moco {
namespace interop {
namespace {

void AddPrefixed(const NamedArrays& from, const std::string& prefix, NamedArrays& to) {
  for (const auto& [n, a] : from) to[prefix + n] = a;
}

NamedArrays Select(const NamedArrays& from, const std::string& prefix) {
  NamedArrays out;
  for (const auto& [n, a] : from) {
    if (absl::StartsWith(n, prefix)) out[n.substr(prefix.size())] = a;
  }
  return out;
}

bool HasHead(const NamedArrays& a) {
  for (const auto& [n, x] : a) {
    if (absl::StartsWith(n, "fc.") || absl::StartsWith(n, "head.")) return true;
  }
  return false;
}

bool IsViT(const NamedArrays& a) { return a.count("cls_token") > 0; }

// The backbone layouts name one family each: torchvision ResNets, timm ViTs; detectron2's
// renaming only knows ResNets.
absl::Status CheckBackboneFormat(const std::string& path, Format format, const NamedArrays& q) {
  const bool vit = IsViT(q);
  if (format == Format::kTimm && !vit) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": the timm layout is for ViT backbones; this is a ResNet: use torchvision"));
  }
  if ((format == Format::kTorchvision || format == Format::kDetectron2) && vit) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": the ", FormatName(format), " layout is for ResNet backbones; this is a ViT: ",
        "use timm"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Format> ParseFormat(const std::string& name) {
  if (name == "native") return Format::kNative;
  if (name == "moco") return Format::kMoco;
  if (name == "moco_v3") return Format::kMocoV3;
  if (name == "torchvision") return Format::kTorchvision;
  if (name == "detectron2") return Format::kDetectron2;
  if (name == "timm") return Format::kTimm;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown format '", name,
      "' (expected native, moco, moco_v3, torchvision, timm or detectron2)"));
}

const char* FormatName(Format format) {
  switch (format) {
    case Format::kNative: return "native";
    case Format::kMoco: return "moco";
    case Format::kMocoV3: return "moco_v3";
    case Format::kTorchvision: return "torchvision";
    case Format::kDetectron2: return "detectron2";
    case Format::kTimm: return "timm";
  }
  return "?";
}

MocoWeights FromNativeCheckpoint(const Checkpoint& c, const ExperimentConfig& config) {
  MocoWeights w;
  w.query = Select(c.arrays, "query/");
  w.key = Select(c.arrays, "key/");
  NamedArrays queue = Select(c.arrays, "queue/");
  if (queue.count("queue")) w.queue = queue.at("queue");
  if (queue.count("queue_ptr")) w.queue_ptr = queue.at("queue_ptr");
  w.momentum = Select(c.arrays, "optimizer/");
  w.epoch = c.epoch;
  w.arch = config.model().arch();
  w.lr = config.optimizer().lr();
  w.sgd_momentum = config.optimizer().momentum();
  w.weight_decay = config.optimizer().weight_decay();
  return w;
}

Checkpoint ToNativeCheckpoint(const MocoWeights& w, const ExperimentConfig& config) {
  Checkpoint c;
  c.epoch = w.epoch;
  c.seed = config.run().seed();
  c.config_text = ToTextProto(config);
  c.backend = config.backend().name();
  AddPrefixed(w.query, "query/", c.arrays);
  if (w.key.empty()) {
    // MoCo's initialization: the key encoder is a copy of the query encoder, without the
    // query-only predictor (MoCo v3).
    NamedArrays key;
    for (const auto& [name, a] : w.query) {
      if (!absl::StartsWith(name, "predictor.")) key[name] = a;
    }
    AddPrefixed(key, "key/", c.arrays);
  } else {
    AddPrefixed(w.key, "key/", c.arrays);
  }
  if (w.queue) c.arrays["queue/queue"] = *w.queue;
  if (w.queue) c.arrays["queue/queue_ptr"] = w.queue_ptr ? *w.queue_ptr : HostArray({1}, {0.0f});
  AddPrefixed(w.momentum, "optimizer/", c.arrays);
  c.metadata["converted_by"] = "moco/interop";
  return c;
}

absl::StatusOr<WeightsFile> ReadWeightsFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string bytes, ReadFileBytes(path));
  WeightsFile out;
  if (absl::StartsWith(bytes, "MOCOCKPT")) {
    bytes.clear();
    ASSIGN_OR_RETURN(Checkpoint c, ReadCheckpoint(path));
    ExperimentConfig config;
    RETURN_IF_ERROR(ParseTextProto(c.config_text, absl::StrCat(path, " (its experiment config)"), &config));
    out.format = Format::kNative;
    out.weights = FromNativeCheckpoint(c, config);
    out.config = config;
    out.native = std::move(c);
    return out;
  }
  ASSIGN_OR_RETURN(LoadedFile f, LoadPickleFile(bytes, path));
  bytes.clear();
  const std::string layout = DetectLayout(*f.value);
  if (layout == "moco") {
    out.format = Format::kMoco;
    ASSIGN_OR_RETURN(out.weights, FromOfficialMoco(*f.value, path));
  } else if (layout == "moco_v3") {
    out.format = Format::kMocoV3;
    ASSIGN_OR_RETURN(out.weights, FromOfficialMocoV3(*f.value, path));
  } else if (layout == "torchvision") {
    out.format = Format::kTorchvision;
    ASSIGN_OR_RETURN(out.weights, FromTorchvision(*f.value, path));
  } else if (layout == "timm") {
    out.format = Format::kTimm;
    ASSIGN_OR_RETURN(out.weights, FromTimm(*f.value, path));
  } else if (layout == "detectron2") {
    out.format = Format::kDetectron2;
    ASSIGN_OR_RETURN(out.weights, FromDetectron2(*f.value, path));
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": a ", FileKindName(f.kind),
        " file, but not in the official MoCo (v1/v2 or v3), torchvision, timm or detectron2 "
        "layout (no state_dict with encoder_q.*, base_encoder.*, conv1.* or "
        "patch_embed.proj.weight, no \"model\" of numpy arrays)"));
  }
  return out;
}

absl::Status WriteWeightsFile(const std::string& path, Format format, const MocoWeights& w,
                              const ExperimentConfig& config, bool with_optimizer) {
  std::string bytes;
  RETURN_IF_ERROR(CheckBackboneFormat(path, format, w.query));
  switch (format) {
    case Format::kNative:
      return WriteCheckpoint(path, ToNativeCheckpoint(w, config));
    case Format::kMoco: {
      if (with_optimizer && !w.momentum.empty() &&
          config.optimizer().algorithm() != OptimizerConfig::SGD) {
        // The layout's optimizer is torch.optim.SGD's state_dict; another rule's buffers under
        // SGD's hyper-parameters would resume as something else in PyTorch.
        return absl::InvalidArgumentError(absl::StrCat(
            path, ": the official MoCo v1/v2 layout stores an SGD optimizer, but this run used ",
            OptimizerConfig::Algorithm_Name(config.optimizer().algorithm()),
            " (optimizer.algorithm): write it with --with_optimizer=false, or as moco_v3"));
      }
      MocoWeights named = w;
      if (named.arch.empty()) named.arch = config.model().arch();
      ASSIGN_OR_RETURN(bytes, SaveTorchZip(*ToOfficialMoco(named, with_optimizer)));
      break;
    }
    case Format::kMocoV3: {
      MocoWeights named = w;
      if (named.arch.empty()) named.arch = config.model().arch();
      ASSIGN_OR_RETURN(bytes, SaveTorchZip(*ToOfficialMocoV3(named)));
      break;
    }
    case Format::kTorchvision:
    case Format::kTimm: {
      ASSIGN_OR_RETURN(bytes, SaveTorchZip(*ToTorchvision(w)));
      break;
    }
    case Format::kDetectron2: {
      ASSIGN_OR_RETURN(bytes, SavePlainPickle(*ToDetectron2(w)));
      break;
    }
  }
  return WriteFileAtomically(path, bytes);
}

namespace {

// v3 heads (Linear, BN, ReLU, ..., Linear[, BN]): "<name>.0.weight" is (hidden, in), the last
// Linear "<name>.<3 (layers - 1)>.weight" is (dim, hidden).
int V3HeadLayers(const NamedArrays& q, const std::string& name) {
  int layers = 0;
  while (q.count(absl::StrCat(name, ".", 3 * layers, ".weight"))) ++layers;
  return layers;
}

absl::StatusOr<ModelConfig> InferViTModelConfig(const NamedArrays& q,
                                                const std::string& arch_hint) {
  const auto& patch = q.at("patch_embed.proj.weight").shape();  // (D, C, p, p)
  auto pos = q.find("pos_embed");
  if (patch.size() != 4 || patch[2] != patch[3] || pos == q.end() ||
      pos->second.shape().size() != 3) {
    return absl::InvalidArgumentError(
        "patch_embed.proj.weight is not (D, C, p, p) or pos_embed is not (1, T, D): not a ViT");
  }
  int depth = 0;
  while (q.count(absl::StrCat("blocks.", depth, ".attn.qkv.weight"))) ++depth;
  const int64_t dim = patch[0];
  const int64_t grid = std::llround(std::sqrt(static_cast<double>(pos->second.shape()[1] - 1)));
  // The weights do not say the number of heads: the table's entry of this width and depth.
  std::string arch;
  for (const ViTArchitecture& a : ViTArchitectures()) {
    if (a.embed_dim == dim && a.depth == depth) arch = a.name;
  }
  if (arch.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a ViT of width ", dim, " and depth ", depth, " is not one of ",
        absl::StrJoin(ViTArchitectureNames(), ", ")));
  }
  if (!arch_hint.empty() && arch_hint != arch && FindViTArchitecture(arch_hint) != nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("the file says arch '", arch_hint,
                                                   "' but its width and depth are a ", arch));
  }
  ModelConfig m;
  m.set_arch(arch);
  m.set_in_channels(static_cast<int32_t>(patch[1]));
  m.set_patch_size(static_cast<int32_t>(patch[2]));
  m.set_image_size(static_cast<int32_t>(grid * patch[2]));
  const int layers = V3HeadLayers(q, "head");
  if (layers >= 2) {
    m.set_projector_layers(layers);
    m.set_projector_hidden_dim(static_cast<int32_t>(q.at("head.0.weight").shape()[0]));
    m.set_feature_dim(static_cast<int32_t>(
        q.at(absl::StrCat("head.", 3 * (layers - 1), ".weight")).shape()[0]));
    if (q.count("predictor.0.weight")) {
      m.set_predictor_hidden_dim(static_cast<int32_t>(q.at("predictor.0.weight").shape()[0]));
    }
  }
  return m;
}

}  // namespace

absl::StatusOr<ModelConfig> InferModelConfig(const NamedArrays& q, const std::string& arch_hint) {
  if (q.count("patch_embed.proj.weight")) return InferViTModelConfig(q, arch_hint);
  auto conv1 = q.find("conv1.weight");
  if (conv1 == q.end() || conv1->second.shape().size() != 4) {
    return absl::InvalidArgumentError("no 4-d conv1.weight: not a ResNet backbone");
  }
  const auto& s = conv1->second.shape();
  ModelConfig m;
  m.set_in_channels(static_cast<int32_t>(s[1]));
  m.set_cifar_stem(s[2] == 3);
  m.set_width_multiplier(static_cast<float>(s[0]) / static_cast<float>(kStageBaseWidths[0]));
  // The architecture whose block type and blocks per stage (moco/core/model_spec.h) these are.
  const BlockType block = q.count("layer1.0.conv3.weight") ? BlockType::kBottleneck
                                                            : BlockType::kBasic;
  std::array<int, kNumStages> blocks = {};
  for (int stage = 0; stage < kNumStages; ++stage) {
    while (q.count(absl::StrCat("layer", stage + 1, ".", blocks[stage], ".conv1.weight"))) {
      ++blocks[stage];
    }
  }
  std::string arch;
  for (const ResNetArchitecture& a : ResNetArchitectures()) {
    if (a.block == block && a.blocks == blocks) arch = a.name;
  }
  if (arch.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "layers 1-4 have ", absl::StrJoin(blocks, ", "), " ",
        block == BlockType::kBottleneck ? "bottleneck" : "basic",
        " blocks: not one of ", absl::StrJoin(ResNetArchitectureNames(), ", ")));
  }
  if (!arch_hint.empty() && arch_hint != arch) {
    return absl::InvalidArgumentError(absl::StrCat("the file says arch '", arch_hint,
                                                   "' but its blocks are a ", arch));
  }
  m.set_arch(arch);
  if (q.count("fc.0.weight") && q.count("fc.1.weight") && q.count("fc.3.weight")) {
    // moco-v3's heads: fc.0 (hidden, width), fc.3 (dim, hidden); predictor.0 (hidden, dim).
    m.set_projector_hidden_dim(static_cast<int32_t>(q.at("fc.0.weight").shape()[0]));
    m.set_feature_dim(static_cast<int32_t>(q.at("fc.3.weight").shape()[0]));
    if (q.count("predictor.0.weight")) {
      m.set_predictor_hidden_dim(static_cast<int32_t>(q.at("predictor.0.weight").shape()[0]));
    }
  } else if (q.count("fc.0.weight") && q.count("fc.2.weight")) {
    m.set_mlp_head(true);
    m.set_feature_dim(static_cast<int32_t>(q.at("fc.2.weight").shape()[0]));
  } else if (q.count("fc.weight")) {
    m.set_mlp_head(false);
    m.set_feature_dim(static_cast<int32_t>(q.at("fc.weight").shape()[0]));
  }
  return m;
}

absl::Status MatchArchitecture(const NamedArrays& expected, const NamedArrays& got,
                               bool allow_missing_head, const std::string& label) {
  const bool skip_head = allow_missing_head && !HasHead(got);
  for (const std::string& n : TorchvisionOrder(expected)) {
    if (skip_head && (absl::StartsWith(n, "fc.") || absl::StartsWith(n, "head.") ||
                      absl::StartsWith(n, "predictor."))) {
      continue;
    }
    const auto& want = expected.at(n).shape();
    auto it = got.find(n);
    if (it == got.end()) {
      return absl::InvalidArgumentError(absl::StrCat(label, ": '", n, "' is missing (the architecture needs shape ",
                                                     ShapeToString(want), ", the file has none)"));
    }
    if (it->second.shape() != want) {
      return absl::InvalidArgumentError(absl::StrCat(
          label, ": '", n, "' has shape ", ShapeToString(it->second.shape()),
          " in the file but the architecture needs ", ShapeToString(want)));
    }
  }
  for (const std::string& n : TorchvisionOrder(got)) {
    if (!expected.count(n)) {
      return absl::InvalidArgumentError(absl::StrCat(label, ": '", n, "' (shape ",
                                                     ShapeToString(got.at(n).shape()),
                                                     ") is not part of the architecture"));
    }
  }
  return absl::OkStatus();
}

}  // namespace interop
}  // namespace moco
