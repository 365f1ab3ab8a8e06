// The project's weights (torchvision names) <-> the layouts PyTorch users have:
//   torchvision   a backbone state_dict: conv1.weight, bn1.*, layer1.0.conv1.weight, ...
//                 (no fc: torchvision's fc is a classifier, not a MoCo head);
//   moco          the official MoCo v1/v2 training checkpoint: {"epoch", "arch", "state_dict",
//                 "optimizer"}, state_dict "module.encoder_q.*", "module.encoder_k.*",
//                 "module.queue" (dim, K) and "module.queue_ptr" (int64, (1,)); BN
//                 num_batches_tracked int64; optimizer in torch.optim.SGD's state_dict layout
//                 over MoCo.parameters() (encoder_q then encoder_k; momentum buffers for
//                 encoder_q only);
//   moco_v3       facebookresearch/moco-v3's checkpoint: {"epoch", "arch", "state_dict"},
//                 state_dict "module.base_encoder.*" (backbone + projector fc.*),
//                 "module.momentum_encoder.*" and "module.predictor.*"; the project keeps the
//                 predictor in the query encoder as "predictor.*";
//   timm          a ViT backbone state_dict: cls_token, pos_embed, patch_embed.proj.*,
//                 blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}.*, norm.* (timm's
//                 classifier head.* dropped on reading, not written);
//   detectron2    {"model": {name: numpy array}, "__author__": "MOCO",
//                 "matching_heuristics": True}, names as the official converter renames them
//                 (stem., resN, convK.norm, shortcut[.norm]), fc dropped.
//
//   ASSIGN_OR_RETURN(MocoWeights w, FromOfficialMoco(*file.value, path));
//   PyRef out = ToTorchvision(w);
#ifndef MOCO_INTEROP_LAYOUTS_H_
#define MOCO_INTEROP_LAYOUTS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "moco/core/host_array.h"
#include "moco/interop/py_object.h"

namespace moco {
namespace interop {

// A MoCo run's weights in the project's names and layouts, whatever file they came from.
struct MocoWeights {
  NamedArrays query;                   // torchvision names, head (fc.*) when the file has one
  NamedArrays key;                     // the key encoder; empty when the file has none
  std::optional<HostArray> queue;      // (K, dim): the project's layout
  std::optional<HostArray> queue_ptr;  // (1,)
  NamedArrays momentum;                // SGD momentum buffers, by query parameter name
  int64_t epoch = 0;
  std::string arch;                    // e.g. "resnet50" when the file says
  // SGD hyper-parameters written into the official optimizer state's param_groups.
  double lr = 0.03, sgd_momentum = 0.9, weight_decay = 1e-4;
};

// BN running_mean / running_var / num_batches_tracked: buffers, not parameters.
bool IsBuffer(const std::string& name);
// Names in torchvision's state_dict order (conv1, bn1, layer1.0.conv1, ..., fc; weight before
// bias before running stats): the order of model.parameters() for the parameters.
std::vector<std::string> TorchvisionOrder(const NamedArrays& arrays);

// The official converter's renaming, and back.
std::string ToDetectron2Name(const std::string& torchvision_name);
std::string FromDetectron2Name(const std::string& detectron2_name);

// Readers: `root` is what the file unpickled to. Errors name `label` and the entry.
// FromOfficialMoco accepts "module.encoder_q." and "encoder_q." prefixes.
absl::StatusOr<MocoWeights> FromOfficialMoco(const PyObject& root, const std::string& label);
// FromOfficialMocoV3 accepts "module.base_encoder." and "base_encoder." prefixes; the optimizer
// state is not read (a v3 file starts a fresh optimizer).
absl::StatusOr<MocoWeights> FromOfficialMocoV3(const PyObject& root, const std::string& label);
// A state_dict (or {"state_dict": ...}) of torchvision names, optional "module." prefix; fc.*
// is dropped.
absl::StatusOr<MocoWeights> FromTorchvision(const PyObject& root, const std::string& label);
absl::StatusOr<MocoWeights> FromDetectron2(const PyObject& root, const std::string& label);
// A timm VisionTransformer state_dict (or {"state_dict": ...}), optional "module." prefix; its
// classifier head.* is dropped (a MoCo ViT's head.* is the projector, not that).
absl::StatusOr<MocoWeights> FromTimm(const PyObject& root, const std::string& label);

// Which reader fits `root`: "moco", "moco_v3", "torchvision", "timm", "detectron2", or "" when
// none does.
std::string DetectLayout(const PyObject& root);

// Writers (trees for SaveTorchZip / SavePlainPickle). ToOfficialMoco: a missing key encoder
// is written as a copy of the query encoder (MoCo's initialization); the queue only when
// present; the optimizer only when `with_optimizer` and momentum buffers are present.
PyRef ToOfficialMoco(const MocoWeights& w, bool with_optimizer);
// moco-v3's layout (no optimizer): base_encoder = the query without predictor.*, the key encoder
// (a copy of base_encoder when missing), predictor.*.
PyRef ToOfficialMocoV3(const MocoWeights& w);
// Backbone only (no fc / head, no predictor): torchvision's layout for a ResNet, timm's for a ViT.
PyRef ToTorchvision(const MocoWeights& w);
PyRef ToDetectron2(const MocoWeights& w);   // backbone only

}  // namespace interop
}  // namespace moco

#endif  // MOCO_INTEROP_LAYOUTS_H_
