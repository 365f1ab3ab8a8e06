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
    if (absl::StartsWith(n, "fc.")) return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<Format> ParseFormat(const std::string& name) {
  if (name == "native") return Format::kNative;
  if (name == "moco") return Format::kMoco;
  if (name == "moco_v3") return Format::kMocoV3;
  if (name == "torchvision") return Format::kTorchvision;
  if (name == "detectron2") return Format::kDetectron2;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown format '", name,
      "' (expected native, moco, moco_v3, torchvision or detectron2)"));
}

const char* FormatName(Format format) {
  switch (format) {
    case Format::kNative: return "native";
    case Format::kMoco: return "moco";
    case Format::kMocoV3: return "moco_v3";
    case Format::kTorchvision: return "torchvision";
    case Format::kDetectron2: return "detectron2";
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
  AddPrefixed(w.key.empty() ? w.query : w.key, "key/", c.arrays);
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
  } else if (layout == "detectron2") {
    out.format = Format::kDetectron2;
    ASSIGN_OR_RETURN(out.weights, FromDetectron2(*f.value, path));
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": a ", FileKindName(f.kind),
        " file, but not in the official MoCo (v1/v2 or v3), torchvision or detectron2 layout "
        "(no state_dict with encoder_q.*, base_encoder.* or conv1.*, no \"model\" of numpy "
        "arrays)"));
  }
  return out;
}

absl::Status WriteWeightsFile(const std::string& path, Format format, const MocoWeights& w,
                              const ExperimentConfig& config, bool with_optimizer) {
  std::string bytes;
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
    case Format::kTorchvision: {
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

absl::StatusOr<ModelConfig> InferModelConfig(const NamedArrays& q, const std::string& arch_hint) {
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
    if (skip_head && (absl::StartsWith(n, "fc.") || absl::StartsWith(n, "predictor."))) continue;
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
