// The ViT backbone in LibTorch, built from a moco::ViTSpec (moco/core/vit_spec.h describes the
// structure, timm's names and the initialization this module follows):
//
//   ViTBackbone net(spec);                      // initialized from torch's global generator
//   torch::Tensor f = net->forward(images);     // (N, embed_dim): norm(x)[:, 0], the cls token
//
// Parameter and buffer names are timm's VisionTransformer's (patch_embed.proj.weight,
// cls_token, blocks.3.attn.qkv.bias, norm.weight, ...), so a timm state_dict loads by name.
// pos_embed is a buffer (moco-v3's fixed sin-cos table is never trained); under
// spec.stop_grad_conv1 the patch projection is a pair of buffers too, so optimizers never see
// it and it keeps its random initialization.
//
// ViTEncoder adds MoCo's projector ("head", the module moco-v3 puts in place of timm's
// classifier) and the v3 predictor; TorchEncoder builds it for ViT configs
// (backends/torch/encoder_network.h).
#ifndef BACKENDS_TORCH_VIT_H_
#define BACKENDS_TORCH_VIT_H_

#include <torch/torch.h>

#include "backends/torch/heads.h"
#include "backends/torch/layer_capture.h"
#include "moco/core/communicator.h"
#include "moco/core/model_spec.h"
#include "moco/core/vit_spec.h"

namespace moco::torch_backend {

// patch_embed: Conv2d(in_channels, D, kernel = stride = patch) then flatten to (N, L, D).
class PatchEmbedImpl : public torch::nn::Module {
 public:
  explicit PatchEmbedImpl(const ViTSpec& spec);
  torch::Tensor forward(const torch::Tensor& images);

  // The weight and bias (parameters, or buffers under stop_grad_conv1), named proj.weight and
  // proj.bias inside the child module proj.
  torch::Tensor& weight() { return proj_->weight; }
  torch::Tensor& bias() { return proj_->bias; }

 private:
  struct ProjImpl : torch::nn::Module {
    torch::Tensor weight, bias;
  };
  std::shared_ptr<ProjImpl> proj_;
  int64_t patch_size_;
};
TORCH_MODULE(PatchEmbed);

// attn: multi-head self-attention, qkv Linear(D, 3D) then proj Linear(D, D).
class ViTAttentionImpl : public torch::nn::Module {
 public:
  explicit ViTAttentionImpl(const ViTSpec& spec);
  torch::Tensor forward(const torch::Tensor& x);  // (N, T, D) -> (N, T, D)

  torch::nn::Linear qkv{nullptr}, proj{nullptr};

 private:
  int num_heads_;
};
TORCH_MODULE(ViTAttention);

// mlp: fc1 Linear(D, hidden), exact (erf) GELU, fc2 Linear(hidden, D).
class ViTMlpImpl : public torch::nn::Module {
 public:
  explicit ViTMlpImpl(const ViTSpec& spec);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(ViTMlp);

// One pre-norm transformer block: x + attn(norm1(x)), then + mlp(norm2(x)).
class ViTBlockImpl : public torch::nn::Module {
 public:
  explicit ViTBlockImpl(const ViTSpec& spec);
  torch::Tensor forward(const torch::Tensor& x);  // (N, T, D) -> (N, T, D)

  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  ViTAttention attn{nullptr};
  ViTMlp mlp{nullptr};
};
TORCH_MODULE(ViTBlock);

class ViTBackboneImpl : public torch::nn::Module {
 public:
  explicit ViTBackboneImpl(const ViTSpec& spec);

  // images (N, in_channels, image_size, image_size) -> cls features (N, embed_dim).
  torch::Tensor forward(const torch::Tensor& images);

  // While `capture` is non-null, forward() adds, in execution order: "patch_embed" (N, L, D),
  // per block "blocks.<i>.attn" (the residual stream after the attention half) and "blocks.<i>"
  // (the block output), and "norm" (the cls token's features, (N, D)). Not owned.
  void set_activation_capture(LayerCapture* capture) { capture_ = capture; }

  const ViTSpec& spec() const { return spec_; }

  PatchEmbed patch_embed{nullptr};
  torch::Tensor cls_token, pos_embed;
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm norm{nullptr};

 protected:
  LayerCapture* capture_ = nullptr;

 private:
  ViTSpec spec_;
};
TORCH_MODULE(ViTBackbone);

// The MoCo encoder on a ViT: the backbone's modules at the top level (timm's names), then the
// projector `head` (v1: Linear, v2: Sequential(Linear, ReLU, Linear), v3: moco-v3's MLP with
// BatchNorm) and, for v3 query encoders, `predictor`. Heads draw torch's default Linear
// initialization after the backbone's.
class ViTEncoderImpl : public ViTBackboneImpl {
 public:
  // `spec` from EncoderSpecForEncoder with a ViT backbone.
  explicit ViTEncoderImpl(const EncoderSpec& spec);

  // Head output (N, feature_dim), not normalized; adds the heads' outputs to the capture
  // (HeadSpec::OutputName) after the backbone's.
  torch::Tensor forward(const torch::Tensor& images);
  torch::Tensor features(const torch::Tensor& images) { return ViTBackboneImpl::forward(images); }

  // SyncBatchNorm for the v3 heads' BatchNorms in training mode; null or world 1 turns it off.
  void set_sync_group(Communicator* group);

  EncoderHeads heads;  // the projector "head" and the v3 predictor (backends/torch/heads.h)

 private:
  EncoderSpec encoder_spec_;
  Communicator* sync_group_ = nullptr;
};
TORCH_MODULE(ViTEncoder);

}  // namespace moco::torch_backend

#endif  // BACKENDS_TORCH_VIT_H_
