// The Vision Transformer backbone as data (MoCo v3, arXiv 2104.02057, and its vits.py): the
// architecture table, the one ViTSpec both backends build from, timm's parameter names and
// moco-v3's fixed 2-D sin-cos position embedding.
//
// Structure (timm's VisionTransformer, pre-norm, no dropout, no class head):
//   patch_embed.proj   Conv2d(in_channels, D, kernel = stride = patch_size, bias) -> (N, L, D)
//   cls_token          (1, 1, D) prepended -> (N, T = 1 + L, D)
//   pos_embed          (1, T, D) added: fixed sin-cos, zero for the cls token, never trained
//   blocks.i           x = x + attn(norm1(x)); x = x + mlp(norm2(x))
//     .norm1/.norm2      LayerNorm(D, eps 1e-6)
//     .attn.qkv          Linear(D, 3D, bias): rows [q; k; v], each split into num_heads heads
//     .attn.proj         Linear(D, D, bias) after softmax(q k^T / sqrt(head_dim)) v
//     .mlp.fc1/.mlp.fc2  Linear(D, mlp_hidden) - GELU (erf form) - Linear(mlp_hidden, D)
//   norm               LayerNorm(D, eps 1e-6); features = norm(x)[:, 0] (the cls token)
//   head               the MoCo projector (moco-v3 replaces timm's classifier `head` with it)
//
// Initialization (moco-v3 vits.py, drawn in this order by both backends' own generators):
//   every Linear in blocks: xavier_uniform, U(-a, a) with a = sqrt(6 / (fan_in + fan_out)),
//     except qkv, whose fan_out counts one of q, k, v: a = sqrt(6 / (D + D)) for the (3D, D)
//     weight (vits.py: "treat the weights of Q, K, V separately"); every bias 0;
//   patch_embed.proj.weight U(-a, a), a = sqrt(6 / (in_channels * p * p + D)) (vits.py writes
//     3 * p * p: its inputs are RGB), bias 0;
//   cls_token normal(0, 1e-6); LayerNorm weight 1, bias 0; pos_embed as below.
// stop_grad_conv1 (moco-v3's "random patch projection", arXiv 2104.02057 sec. 5.3): the patch
// projection keeps its random init and is never trained.
#ifndef MOCO_CORE_VIT_SPEC_H_
#define MOCO_CORE_VIT_SPEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace moco {

struct ViTArchitecture {
  const char* name;  // "vit_small"
  int64_t embed_dim;
  int depth;
  int num_heads;
  int64_t mlp_ratio;          // mlp_hidden = mlp_ratio * embed_dim
  int64_t default_patch_size;  // model.patch_size 0 means this
};

// vit_micro (D 128, 4 blocks, 4 heads, patch 4: the 28/32 px CPU model of this project),
// vit_tiny (192, 12, 3), vit_small (384, 12, 12: moco-v3's, not DeiT's 6 heads),
// vit_base (768, 12, 12); patch 16 but for vit_micro; mlp_ratio 4.
const std::vector<ViTArchitecture>& ViTArchitectures();
std::vector<std::string> ViTArchitectureNames();
// Null for an unknown name.
const ViTArchitecture* FindViTArchitecture(const std::string& name);

struct ViTSpec {
  int64_t image_size = 224;  // square inputs of exactly this side
  int64_t patch_size = 16;
  int64_t in_channels = 3;
  int64_t embed_dim = 384;
  int depth = 12;
  int num_heads = 12;
  int64_t mlp_hidden = 1536;
  double layer_norm_eps = 1e-6;
  bool stop_grad_conv1 = false;

  int64_t grid() const { return image_size / patch_size; }  // patches per side
  int64_t num_patches() const { return grid() * grid(); }   // L
  int64_t num_tokens() const { return 1 + num_patches(); }  // T: cls + patches
  int64_t head_dim() const { return embed_dim / num_heads; }
  // "blocks.<i>"
  static std::string BlockName(int i);
};

// moco-v3's build_2d_sincos_position_embedding (temperature 10000), row-major (T, D): row 0 (the
// cls token) is zero; patch token 1 + r * grid + c (the conv output's row r, column c) is
// [sin(r w), cos(r w), sin(c w), cos(c w)], w_i = 1 / 10000^(i / (D / 4)), i < D / 4. (vits.py
// calls r "w": torch.meshgrid(grid_w, grid_h) indexes 'ij'.) Needs D divisible by 4.
std::vector<double> SinCosPositionEmbedding(const ViTSpec& spec);

// InvalidArgument naming model.image_size unless `shape` is (N >= 1, in_channels, image_size,
// image_size): a ViT's position embedding fixes the input size. Both backends' encoders check
// their inputs with it.
absl::Status CheckViTImageShape(const ViTSpec& spec, const std::vector<int64_t>& shape);

// Multiply-accumulates of one image's forward through the backbone (patch embedding, every
// block's Linear layers and both attention matmuls; not LayerNorm, softmax, GELU or adds): the
// figure DeiT reports as "FLOPs" (ViT-S/16 at 224: 4.6 G).
int64_t ViTBackboneMacs(const ViTSpec& spec);

}  // namespace moco

#endif  // MOCO_CORE_VIT_SPEC_H_
