// EncoderNetwork: what TorchEncoder needs of the module it trains, so one encoder class serves
// every backbone: the ResNets (backends/torch/resnet.h) and the ViTs (backends/torch/vit.h).
//
//   ASSIGN_OR_RETURN(std::unique_ptr<EncoderNetwork> net,
//                    MakeEncoderNetwork(spec, /*bn_splits=*/8, /*channels_last=*/false));
//   torch::Tensor z = net->Forward(images);   // (N, feature_dim), not normalized
//   for (auto& p : net->module()->named_parameters()) ...
#ifndef BACKENDS_TORCH_ENCODER_NETWORK_H_
#define BACKENDS_TORCH_ENCODER_NETWORK_H_

#include <torch/torch.h>

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backends/torch/layer_capture.h"
#include "moco/core/communicator.h"
#include "moco/core/model_spec.h"

namespace moco::torch_backend {

class EncoderNetwork {
 public:
  virtual ~EncoderNetwork() = default;

  // The module that owns every parameter and buffer, named as moco::EncoderStateLayout.
  virtual std::shared_ptr<torch::nn::Module> module() const = 0;
  // InvalidArgument naming the config field if `images` (N, C, H, W) cannot go through the
  // network for a reason the network itself would only report as a LibTorch error.
  virtual absl::Status CheckImages(const torch::Tensor& images) const = 0;
  // Head output (N, feature_dim) for images (N, C, H, W); not normalized.
  virtual torch::Tensor Forward(const torch::Tensor& images) = 0;
  // The head's input (N, backbone_dim): pooled ResNet features, or the ViT's cls token.
  virtual torch::Tensor Features(const torch::Tensor& images) = 0;
  // Nullable, not owned (LayerCapture); null turns capture off.
  virtual void SetActivationCapture(LayerCapture* capture) = 0;
  // SyncBatchNorm over `group` (nullable, not owned) in training mode.
  virtual void SetSyncGroup(Communicator* group) = 0;
  // Shuffling-BN groups of the backbone's BatchNorms (1 for backbones without BatchNorm).
  virtual int64_t bn_splits() const = 0;
  virtual int64_t backbone_dim() const = 0;
};

// Builds `spec`'s network on the CPU from torch's global generator. bn_splits and
// channels_last configure the ResNet's BatchNorms (ResNetImpl::set_bn_splits,
// set_channels_last); a ViT has no backbone BatchNorm and ignores both. Internal if LibTorch
// fails.
absl::StatusOr<std::unique_ptr<EncoderNetwork>> MakeEncoderNetwork(const EncoderSpec& spec,
                                                                   int64_t bn_splits,
                                                                   bool channels_last);

}  // namespace moco::torch_backend

#endif  // BACKENDS_TORCH_ENCODER_NETWORK_H_
