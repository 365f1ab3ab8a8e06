#include "moco/interop/layouts.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "moco/core/status_macros.h"

namespace moco {
namespace interop {
namespace {

constexpr char kQ[] = "encoder_q.";
constexpr char kK[] = "encoder_k.";
// moco-v3 (main_moco.py's MoCo_ResNet): query backbone + projector, the query-only predictor,
// and the momentum (key) encoder.
constexpr char kV3Base[] = "base_encoder.";
constexpr char kV3Momentum[] = "momentum_encoder.";
constexpr char kV3Predictor[] = "predictor.";

// Sort key of one dotted name component: numbers by value, known module/tensor names in
// torchvision's registration order, anything else after them alphabetically.
std::pair<int64_t, std::string> Rank(const std::string& token) {
  static const std::map<std::string, int64_t> kOrder = {
      {"conv1", 0}, {"bn1", 1}, {"conv2", 2}, {"bn2", 3}, {"conv3", 4}, {"bn3", 5},
      {"downsample", 6}, {"layer1", 10}, {"layer2", 11}, {"layer3", 12}, {"layer4", 13},
      {"fc", 20}, {"predictor", 50}, {"weight", 0}, {"bias", 1}, {"running_mean", 2}, {"running_var", 3},
      {"num_batches_tracked", 4},
      // timm's VisionTransformer: its own tensors, then patch_embed, blocks, norm, head.
      {"cls_token", 30}, {"pos_embed", 31}, {"patch_embed", 32}, {"qkv", 33}, {"proj", 34},
      {"blocks", 35}, {"norm1", 36}, {"attn", 37}, {"norm2", 38}, {"mlp", 39}, {"fc1", 40},
      {"fc2", 41}, {"norm", 42}, {"head", 43}};
  int64_t n;
  if (absl::SimpleAtoi(token, &n)) return {n, ""};
  auto it = kOrder.find(token);
  if (it != kOrder.end()) return {it->second, ""};
  return {1000, token};
}

std::vector<std::pair<int64_t, std::string>> Key(const std::string& name) {
  std::vector<std::pair<int64_t, std::string>> key;
  for (absl::string_view t : absl::StrSplit(name, '.')) key.push_back(Rank(std::string(t)));
  return key;
}

absl::Status Bad(const std::string& label, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(label, ": ", what));
}

// The tensors of a state dict by name (prefix `strip` removed, only names with it when set).
absl::StatusOr<NamedArrays> Tensors(const PyObject& dict, const std::string& prefix,
                                    const std::string& label) {
  NamedArrays out;
  for (const auto& [k, v] : dict.entries) {
    if (k->kind != PyKind::kString) return Bad(label, "state_dict has a non-string key");
    if (!absl::StartsWith(k->s, prefix)) continue;
    if (v->kind != PyKind::kTensor && v->kind != PyKind::kNdarray) {
      return Bad(label, absl::StrCat("state_dict entry '", k->s, "' is a ", KindName(v->kind),
                                     ", not a tensor"));
    }
    out[k->s.substr(prefix.size())] = v->array;
  }
  return out;
}

bool HasPrefix(const PyObject& dict, const std::string& prefix) {
  for (const auto& [k, v] : dict.entries) {
    if (k->kind == PyKind::kString && absl::StartsWith(k->s, prefix)) return true;
  }
  return false;
}

const PyObject* StateDict(const PyObject& root) {
  PyRef sd = DictGet(root, "state_dict");
  if (sd && sd->kind == PyKind::kDict) return sd.get();
  return root.kind == PyKind::kDict ? &root : nullptr;
}

std::vector<std::string> Parameters(const NamedArrays& encoder) {
  std::vector<std::string> out;
  for (const std::string& n : TorchvisionOrder(encoder)) {
    if (!IsBuffer(n)) out.push_back(n);
  }
  return out;
}

DType TorchDType(const std::string& name) {
  return absl::EndsWith(name, "num_batches_tracked") ? DType::kInt64 : DType::kFloat32;
}

// Heads: MoCo's projector (fc.* on a ResNet, head.* on a ViT) and v3's predictor (predictor.*).
bool IsHead(const std::string& name) {
  return absl::StartsWith(name, "fc.") || absl::StartsWith(name, "head.") ||
         absl::StartsWith(name, kV3Predictor);
}

constexpr char kTimmAnchor[] = "patch_embed.proj.weight";

void AddEncoder(PyObject& sd, const std::string& prefix, const NamedArrays& e, bool with_fc) {
  for (const std::string& n : TorchvisionOrder(e)) {
    if (!with_fc && IsHead(n)) continue;
    DictSet(sd, prefix + n, MakeTensor(e.at(n), TorchDType(n)));
  }
}

}  // namespace

bool IsBuffer(const std::string& name) {
  return absl::EndsWith(name, ".running_mean") || absl::EndsWith(name, ".running_var") ||
         absl::EndsWith(name, ".num_batches_tracked");
}

std::vector<std::string> TorchvisionOrder(const NamedArrays& arrays) {
  std::vector<std::string> names;
  for (const auto& [n, a] : arrays) names.push_back(n);
  std::stable_sort(names.begin(), names.end(),
                   [](const std::string& a, const std::string& b) { return Key(a) < Key(b); });
  return names;
}

std::string ToDetectron2Name(const std::string& name) {
  std::string k = name;
  if (!absl::StrContains(k, "layer")) k = "stem." + k;
  for (int t = 1; t <= 4; ++t) {
    k = absl::StrReplaceAll(k, {{absl::StrCat("layer", t), absl::StrCat("res", t + 1)}});
  }
  for (int t = 1; t <= 3; ++t) {
    k = absl::StrReplaceAll(k, {{absl::StrCat("bn", t), absl::StrCat("conv", t, ".norm")}});
  }
  k = absl::StrReplaceAll(k, {{"downsample.0", "shortcut"}});
  k = absl::StrReplaceAll(k, {{"downsample.1", "shortcut.norm"}});
  return k;
}

std::string FromDetectron2Name(const std::string& name) {
  std::string k = name;
  if (absl::StartsWith(k, "stem.")) k = k.substr(5);
  k = absl::StrReplaceAll(k, {{"shortcut.norm", "downsample.1"}});
  k = absl::StrReplaceAll(k, {{"shortcut", "downsample.0"}});
  for (int t = 1; t <= 3; ++t) {
    k = absl::StrReplaceAll(k, {{absl::StrCat("conv", t, ".norm"), absl::StrCat("bn", t)}});
  }
  for (int t = 2; t <= 5; ++t) {
    if (absl::StartsWith(k, absl::StrCat("res", t, "."))) {
      k = absl::StrCat("layer", t - 1, k.substr(4));
    }
  }
  return k;
}

std::string DetectLayout(const PyObject& root) {
  if (root.kind != PyKind::kDict) return "";
  PyRef model = DictGet(root, "model");
  if (model && model->kind == PyKind::kDict && !model->entries.empty() &&
      model->entries.front().second->kind == PyKind::kNdarray) {
    return "detectron2";
  }
  const PyObject* sd = StateDict(root);
  if (sd == nullptr) return "";
  if (HasPrefix(*sd, std::string("module.") + kQ) || HasPrefix(*sd, kQ)) return "moco";
  if (HasPrefix(*sd, std::string("module.") + kV3Base) || HasPrefix(*sd, kV3Base)) {
    return "moco_v3";
  }
  if (HasPrefix(*sd, "conv1.") || HasPrefix(*sd, "module.conv1.")) return "torchvision";
  if (HasPrefix(*sd, kTimmAnchor) || HasPrefix(*sd, std::string("module.") + kTimmAnchor)) {
    return "timm";
  }
  return "";
}

absl::StatusOr<MocoWeights> FromTimm(const PyObject& root, const std::string& label) {
  const PyObject* sd = StateDict(root);
  if (sd == nullptr) return Bad(label, "not a dict");
  const std::string module = HasPrefix(*sd, std::string("module.") + kTimmAnchor) ? "module." : "";
  if (!HasPrefix(*sd, module + kTimmAnchor)) {
    return Bad(label, "no patch_embed.proj.weight: not a timm VisionTransformer state_dict");
  }
  MocoWeights w;
  ASSIGN_OR_RETURN(NamedArrays all, Tensors(*sd, module, label));
  for (auto& [n, a] : all) {
    if (!absl::StartsWith(n, "head.")) w.query[n] = std::move(a);  // timm's classifier
  }
  return w;
}

absl::StatusOr<MocoWeights> FromOfficialMoco(const PyObject& root, const std::string& label) {
  const PyObject* sd = StateDict(root);
  if (sd == nullptr) return Bad(label, "not a dict");
  const std::string module = HasPrefix(*sd, std::string("module.") + kQ) ? "module." : "";
  if (!HasPrefix(*sd, module + kQ)) return Bad(label, "no encoder_q.* entries: not a MoCo checkpoint");
  MocoWeights w;
  ASSIGN_OR_RETURN(w.query, Tensors(*sd, module + kQ, label));
  ASSIGN_OR_RETURN(w.key, Tensors(*sd, module + kK, label));
  if (PyRef q = DictGet(*sd, module + "queue")) {
    if (q->kind != PyKind::kTensor || q->array.shape().size() != 2) {
      return Bad(label, "'queue' is not a (dim, K) tensor");
    }
    const int64_t dim = q->array.shape()[0], k = q->array.shape()[1];
    HostArray t({k, dim});  // (dim, K) -> (K, dim)
    for (int64_t r = 0; r < dim; ++r) {
      for (int64_t c = 0; c < k; ++c) t.mutable_data()[c * dim + r] = q->array.data()[r * k + c];
    }
    w.queue = std::move(t);
  }
  if (PyRef p = DictGet(*sd, module + "queue_ptr")) {
    if (p->kind != PyKind::kTensor || p->array.numel() != 1) return Bad(label, "'queue_ptr' is not one integer");
    w.queue_ptr = HostArray({1}, {p->array.data()[0]});
  }
  if (PyRef e = DictGet(root, "epoch"); e && e->kind == PyKind::kInt) w.epoch = e->i;
  if (PyRef a = DictGet(root, "arch"); a && a->kind == PyKind::kString) w.arch = a->s;
  PyRef opt = DictGet(root, "optimizer");
  if (opt && opt->kind == PyKind::kDict) {
    const std::vector<std::string> params = Parameters(w.query);
    PyRef state = DictGet(*opt, "state");
    if (state && state->kind == PyKind::kDict) {
      for (const auto& [idx, s] : state->entries) {
        if (idx->kind != PyKind::kInt || idx->i < 0) return Bad(label, "optimizer state index is not an int");
        PyRef buf = s->kind == PyKind::kDict ? DictGet(*s, "momentum_buffer") : nullptr;
        if (!buf || buf->kind != PyKind::kTensor) continue;
        if (idx->i >= static_cast<int64_t>(params.size())) continue;  // an encoder_k parameter
        const std::string& name = params[static_cast<size_t>(idx->i)];
        if (buf->array.shape() != w.query.at(name).shape()) {
          return Bad(label, absl::StrCat("optimizer momentum buffer ", idx->i, " has shape ",
                                         ShapeToString(buf->array.shape()), " but parameter '",
                                         name, "' has ", ShapeToString(w.query.at(name).shape())));
        }
        w.momentum[name] = buf->array;
      }
    }
    PyRef groups = DictGet(*opt, "param_groups");
    if (groups && groups->kind == PyKind::kList && !groups->items.empty()) {
      auto num = [&](const char* key, double* out) {
        PyRef v = DictGet(*groups->items[0], key);
        if (v && v->kind == PyKind::kFloat) *out = v->f;
        if (v && v->kind == PyKind::kInt) *out = static_cast<double>(v->i);
      };
      num("lr", &w.lr);
      num("momentum", &w.sgd_momentum);
      num("weight_decay", &w.weight_decay);
    }
  }
  return w;
}

absl::StatusOr<MocoWeights> FromOfficialMocoV3(const PyObject& root, const std::string& label) {
  const PyObject* sd = StateDict(root);
  if (sd == nullptr) return Bad(label, "not a dict");
  const std::string module = HasPrefix(*sd, std::string("module.") + kV3Base) ? "module." : "";
  if (!HasPrefix(*sd, module + kV3Base)) {
    return Bad(label, "no base_encoder.* entries: not a moco-v3 checkpoint");
  }
  MocoWeights w;
  ASSIGN_OR_RETURN(w.query, Tensors(*sd, module + kV3Base, label));
  ASSIGN_OR_RETURN(w.key, Tensors(*sd, module + kV3Momentum, label));
  ASSIGN_OR_RETURN(NamedArrays predictor, Tensors(*sd, module + kV3Predictor, label));
  for (auto& [n, a] : predictor) w.query[kV3Predictor + n] = std::move(a);
  if (PyRef e = DictGet(root, "epoch"); e && e->kind == PyKind::kInt) w.epoch = e->i;
  if (PyRef a = DictGet(root, "arch"); a && a->kind == PyKind::kString) w.arch = a->s;
  return w;
}

absl::StatusOr<MocoWeights> FromTorchvision(const PyObject& root, const std::string& label) {
  const PyObject* sd = StateDict(root);
  if (sd == nullptr) return Bad(label, "not a dict");
  const std::string module = HasPrefix(*sd, "module.conv1.") ? "module." : "";
  if (!HasPrefix(*sd, module + "conv1.")) return Bad(label, "no conv1.* entries: not a torchvision state_dict");
  MocoWeights w;
  ASSIGN_OR_RETURN(NamedArrays all, Tensors(*sd, module, label));
  for (auto& [n, a] : all) {
    if (!absl::StartsWith(n, "fc.")) w.query[n] = std::move(a);
  }
  return w;
}

absl::StatusOr<MocoWeights> FromDetectron2(const PyObject& root, const std::string& label) {
  PyRef model = DictGet(root, "model");
  if (!model || model->kind != PyKind::kDict) return Bad(label, "no \"model\" dict: not a detectron2 file");
  ASSIGN_OR_RETURN(NamedArrays named, Tensors(*model, "", label));
  MocoWeights w;
  for (auto& [n, a] : named) w.query[FromDetectron2Name(n)] = std::move(a);
  return w;
}

PyRef ToOfficialMoco(const MocoWeights& w, bool with_optimizer) {
  PyRef sd = MakeDict(/*ordered=*/true);
  if (w.queue) {
    const int64_t k = w.queue->shape()[0], dim = w.queue->shape()[1];
    HostArray t({dim, k});
    for (int64_t r = 0; r < k; ++r) {
      for (int64_t c = 0; c < dim; ++c) t.mutable_data()[c * k + r] = w.queue->data()[r * dim + c];
    }
    DictSet(*sd, "module.queue", MakeTensor(std::move(t)));
    DictSet(*sd, "module.queue_ptr",
            MakeTensor(w.queue_ptr ? *w.queue_ptr : HostArray({1}, {0.0f}), DType::kInt64));
  }
  AddEncoder(*sd, "module.encoder_q.", w.query, true);
  AddEncoder(*sd, "module.encoder_k.", w.key.empty() ? w.query : w.key, true);
  PyRef root = MakeDict();
  DictSet(*root, "epoch", MakeInt(w.epoch));
  DictSet(*root, "arch", MakeString(w.arch));
  DictSet(*root, "state_dict", sd);
  if (with_optimizer && !w.momentum.empty()) {
    const std::vector<std::string> params = Parameters(w.query);
    PyRef state = MakeDict();
    PyRef indices = MakeList();
    for (size_t i = 0; i < params.size(); ++i) {
      auto it = w.momentum.find(params[i]);
      if (it != w.momentum.end()) {
        PyRef s = MakeDict();
        DictSet(*s, "momentum_buffer", MakeTensor(it->second));
        state->entries.emplace_back(MakeInt(static_cast<int64_t>(i)), s);
      }
    }
    // MoCo.parameters(): encoder_q's, then encoder_k's (which never get gradients).
    for (size_t i = 0; i < 2 * params.size(); ++i) indices->items.push_back(MakeInt(static_cast<int64_t>(i)));
    PyRef group = MakeDict();
    DictSet(*group, "lr", MakeFloat(w.lr));
    DictSet(*group, "momentum", MakeFloat(w.sgd_momentum));
    DictSet(*group, "dampening", MakeInt(0));
    DictSet(*group, "weight_decay", MakeFloat(w.weight_decay));
    DictSet(*group, "nesterov", MakeBool(false));
    DictSet(*group, "maximize", MakeBool(false));
    DictSet(*group, "foreach", MakeNone());
    DictSet(*group, "differentiable", MakeBool(false));
    DictSet(*group, "params", indices);
    PyRef opt = MakeDict();
    DictSet(*opt, "state", state);
    DictSet(*opt, "param_groups", MakeList({group}));
    DictSet(*root, "optimizer", opt);
  }
  return root;
}

PyRef ToOfficialMocoV3(const MocoWeights& w) {
  PyRef sd = MakeDict(/*ordered=*/true);
  NamedArrays base, predictor;
  for (const auto& [n, a] : w.query) {
    if (absl::StartsWith(n, kV3Predictor)) {
      predictor[n.substr(sizeof(kV3Predictor) - 1)] = a;
    } else {
      base[n] = a;
    }
  }
  // MoCo_ResNet registers base_encoder, then momentum_encoder, then predictor.
  AddEncoder(*sd, std::string("module.") + kV3Base, base, true);
  AddEncoder(*sd, std::string("module.") + kV3Momentum, w.key.empty() ? base : w.key, true);
  AddEncoder(*sd, std::string("module.") + kV3Predictor, predictor, true);
  PyRef root = MakeDict();
  DictSet(*root, "epoch", MakeInt(w.epoch));
  DictSet(*root, "arch", MakeString(w.arch));
  DictSet(*root, "state_dict", sd);
  return root;
}

PyRef ToTorchvision(const MocoWeights& w) {
  PyRef sd = MakeDict(/*ordered=*/true);
  AddEncoder(*sd, "", w.query, false);
  return sd;
}

PyRef ToDetectron2(const MocoWeights& w) {
  PyRef model = MakeDict();
  for (const std::string& n : TorchvisionOrder(w.query)) {
    if (IsHead(n)) continue;
    model->entries.emplace_back(MakeString(ToDetectron2Name(n)),
                                MakeNdarray(w.query.at(n), TorchDType(n)));
  }
  PyRef root = MakeDict();
  DictSet(*root, "model", model);
  DictSet(*root, "__author__", MakeString("MOCO"));
  DictSet(*root, "matching_heuristics", MakeBool(true));
  return root;
}

}  // namespace interop
}  // namespace moco
