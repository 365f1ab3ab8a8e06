#include "backends/torch/vit.h"

#include <cmath>
#include <string>
#include <vector>

#include "backends/torch/heads.h"

namespace moco::torch_backend {
namespace nn = torch::nn;
namespace {

// U(-a, a), a = sqrt(6 / (fan_in + fan_out)), from torch's global generator.
void XavierUniform(torch::Tensor& w, int64_t fan_in, int64_t fan_out) {
  const double a = std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  w.uniform_(-a, a);
}

nn::LayerNorm MakeLayerNorm(const ViTSpec& spec) {
  return nn::LayerNorm(nn::LayerNormOptions({spec.embed_dim}).eps(spec.layer_norm_eps));
}

}  // namespace

PatchEmbedImpl::PatchEmbedImpl(const ViTSpec& spec) : patch_size_(spec.patch_size) {
  proj_ = register_module("proj", std::make_shared<ProjImpl>());
  torch::Tensor w = torch::empty({spec.embed_dim, spec.in_channels, spec.patch_size, spec.patch_size});
  torch::Tensor b = torch::zeros({spec.embed_dim});
  {
    torch::NoGradGuard no_grad;
    XavierUniform(w, spec.in_channels * spec.patch_size * spec.patch_size, spec.embed_dim);
  }
  if (spec.stop_grad_conv1) {
    proj_->weight = proj_->register_buffer("weight", w);
    proj_->bias = proj_->register_buffer("bias", b);
  } else {
    proj_->weight = proj_->register_parameter("weight", w);
    proj_->bias = proj_->register_parameter("bias", b);
  }
}

torch::Tensor PatchEmbedImpl::forward(const torch::Tensor& images) {
  // (N, D, g, g) -> (N, g * g, D): token r * g + c is the conv output's row r, column c.
  return torch::conv2d(images, proj_->weight, proj_->bias, {patch_size_, patch_size_})
      .flatten(2)
      .transpose(1, 2);
}

ViTAttentionImpl::ViTAttentionImpl(const ViTSpec& spec) : num_heads_(spec.num_heads) {
  const int64_t d = spec.embed_dim;
  qkv = register_module("qkv", nn::Linear(d, 3 * d));
  proj = register_module("proj", nn::Linear(d, d));
}

torch::Tensor ViTAttentionImpl::forward(const torch::Tensor& x) {
  const int64_t n = x.size(0), t = x.size(1), d = x.size(2), h = num_heads_;
  // (N, T, 3D) -> (3, N, H, T, Dh): q, k, v, each split into heads.
  const torch::Tensor qkv_heads = qkv->forward(x).reshape({n, t, 3, h, d / h}).permute({2, 0, 3, 1, 4});
  const torch::Tensor q = qkv_heads[0], k = qkv_heads[1], v = qkv_heads[2];
  const double scale = 1.0 / std::sqrt(static_cast<double>(d / h));
  const torch::Tensor attention = torch::softmax(torch::matmul(q, k.transpose(-2, -1)) * scale, -1);
  // (N, H, T, Dh) -> (N, T, D), heads concatenated in order.
  return proj->forward(torch::matmul(attention, v).transpose(1, 2).reshape({n, t, d}));
}

ViTMlpImpl::ViTMlpImpl(const ViTSpec& spec) {
  fc1 = register_module("fc1", nn::Linear(spec.embed_dim, spec.mlp_hidden));
  fc2 = register_module("fc2", nn::Linear(spec.mlp_hidden, spec.embed_dim));
}

torch::Tensor ViTMlpImpl::forward(const torch::Tensor& x) {
  return fc2->forward(torch::gelu(fc1->forward(x)));  // "none": the exact erf form
}

ViTBlockImpl::ViTBlockImpl(const ViTSpec& spec) {
  norm1 = register_module("norm1", MakeLayerNorm(spec));
  attn = register_module("attn", ViTAttention(spec));
  norm2 = register_module("norm2", MakeLayerNorm(spec));
  mlp = register_module("mlp", ViTMlp(spec));
}

torch::Tensor ViTBlockImpl::forward(const torch::Tensor& x) {
  torch::Tensor out = x + attn->forward(norm1->forward(x));
  return out + mlp->forward(norm2->forward(out));
}

ViTBackboneImpl::ViTBackboneImpl(const ViTSpec& spec) : spec_(spec) {
  const int64_t d = spec.embed_dim;
  // Registration order is timm's state_dict order: cls_token, pos_embed, patch_embed, blocks,
  // norm. Initialization draws in vits.py's order: patch embedding, cls token, blocks.
  patch_embed = register_module("patch_embed", PatchEmbed(spec));
  cls_token = register_parameter("cls_token", torch::empty({1, 1, d}));
  const std::vector<double> table = SinCosPositionEmbedding(spec);
  pos_embed = register_buffer(
      "pos_embed", torch::tensor(table, torch::kDouble).to(torch::kFloat).reshape({1, spec.num_tokens(), d}));
  blocks = register_module("blocks", nn::ModuleList());
  for (int i = 0; i < spec.depth; ++i) blocks->push_back(ViTBlock(spec));
  norm = register_module("norm", MakeLayerNorm(spec));

  torch::NoGradGuard no_grad;
  cls_token.normal_(0.0, 1e-6);
  auto xavier = [](nn::Linear& linear, int64_t fan_out) {
    XavierUniform(linear->weight, linear->weight.size(1), fan_out);
    linear->bias.zero_();
  };
  for (const auto& module : *blocks) {
    ViTBlockImpl& block = *module->as<ViTBlockImpl>();
    xavier(block.attn->qkv, d);  // q, k and v count as three (D, D) matrices for the fans
    xavier(block.attn->proj, d);
    xavier(block.mlp->fc1, spec.mlp_hidden);
    xavier(block.mlp->fc2, d);
  }
}

torch::Tensor ViTBackboneImpl::forward(const torch::Tensor& images) {
  const int64_t s = spec_.image_size;
  TORCH_CHECK(images.dim() == 4 && images.size(1) == spec_.in_channels && images.size(2) == s &&
                  images.size(3) == s,
              "ViT: expected images (N, ", spec_.in_channels, ", ", s, ", ", s, "), got ",
              images.sizes(), " (the position embedding fixes the image size: model.image_size)");
  torch::Tensor x = patch_embed->forward(images);
  if (capture_ != nullptr) capture_->Add("patch_embed", x);
  x = torch::cat({cls_token.expand({x.size(0), 1, x.size(2)}), x}, 1) + pos_embed;
  for (size_t i = 0; i < blocks->size(); ++i) {
    ViTBlockImpl& block = *blocks->ptr(i)->as<ViTBlockImpl>();
    if (capture_ == nullptr) {
      x = block.forward(x);
      continue;
    }
    const std::string name = ViTSpec::BlockName(static_cast<int>(i));
    x = x + block.attn->forward(block.norm1->forward(x));
    capture_->Add(name + ".attn", x);
    x = x + block.mlp->forward(block.norm2->forward(x));
    capture_->Add(name, x);
  }
  torch::Tensor features = norm->forward(x).select(1, 0);
  if (capture_ != nullptr) capture_->Add("norm", features);
  return features;
}

ViTEncoderImpl::ViTEncoderImpl(const EncoderSpec& spec)
    : ViTBackboneImpl(spec.backbone.vit), encoder_spec_(spec) {
  heads.Register(spec, *this);
}

torch::Tensor ViTEncoderImpl::forward(const torch::Tensor& images) {
  return heads.Forward(encoder_spec_, features(images), capture_, sync_group_);
}

void ViTEncoderImpl::set_sync_group(Communicator* group) {
  sync_group_ = group != nullptr && group->world_size() > 1 ? group : nullptr;
}

}  // namespace moco::torch_backend
