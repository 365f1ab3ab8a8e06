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
// Not yet wired into TorchEncoder (which still builds ResNets only): the heads and the
// EncoderNetwork dispatch are the next step of issue 16.
#ifndef BACKENDS_TORCH_VIT_H_
#define BACKENDS_TORCH_VIT_H_

#include <torch/torch.h>

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

  const ViTSpec& spec() const { return spec_; }

  PatchEmbed patch_embed{nullptr};
  torch::Tensor cls_token, pos_embed;
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::LayerNorm norm{nullptr};

 private:
  ViTSpec spec_;
};
TORCH_MODULE(ViTBackbone);

}  // namespace moco::torch_backend

#endif  // BACKENDS_TORCH_VIT_H_
