// ViT<T>: MoCo v3's Vision Transformer (moco/core/vit_spec.h: structure, timm's names,
// initialization) with MoCo's heads, on the Eigen backend's layer functions with an explicit
// backward pass. Same interface as ResNet<T> (backends/eigen/resnet.h), so EigenEncoder drives
// either. T = float in the backend, double in gradient tests.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<ViT<float>> net, ViT<float>::Create(spec, seed));
//   ViTWorkspace<float> ws;
//   const Blob<float>& z = net->Forward(images, {/*train_bn=*/true}, &ws);
//   net->Backward(grad_z, &ws);   // accumulates into the parameters' grad
//
// The patch embedding (a Conv2d with kernel = stride = patch) runs as a Linear on the image's
// patches, each flattened in the conv weight's (C, p, p) order. LayerNorm and GELU are
// backends/eigen/layer_norm.h and elementwise.h, the attention core attention.h. Only the heads
// have BatchNorms (v3), so ForwardOptions apply to them alone; bn_splits must be 1.
#ifndef BACKENDS_EIGEN_VIT_H_
#define BACKENDS_EIGEN_VIT_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "backends/eigen/attention.h"
#include "backends/eigen/blob.h"
#include "backends/eigen/elementwise.h"
#include "backends/eigen/encoder_heads.h"
#include "backends/eigen/forward_options.h"
#include "backends/eigen/layer_norm.h"
#include "backends/eigen/linear.h"
#include "backends/eigen/mlp_head.h"
#include "backends/eigen/params.h"
#include "glog/logging.h"
#include "moco/core/model_spec.h"

namespace moco {
namespace eigen_backend {

// One block's forward activations (all (N, T, ·)) and backward scratch.
template <typename T>
struct ViTBlockCache {
  const Blob<T>* input = nullptr;  // the residual stream entering the block
  Blob<T> norm1, qkv, heads, mid;  // mid = input + proj(heads): after the attention half
  AttentionCache<T> attention;
  LayerNormCache<T> norm1_stats, norm2_stats;
  Blob<T> norm2, hidden, activated, out;  // hidden = fc1(norm2), activated = GELU(hidden)
};

// Everything one forward keeps for its backward; reused across calls. One workspace per
// concurrent forward/backward pair.
template <typename T>
struct ViTWorkspace {
  Blob<T> patches;      // (N, L, C p p)
  Blob<T> embedded;     // (N, L, D): the patch embedding's output
  Blob<T> tokens;       // (N, T, D): cls + patches + pos_embed
  std::vector<ViTBlockCache<T>> blocks;
  Blob<T> cls;          // (N, D): the last block's cls rows
  LayerNormCache<T> norm_stats;
  Blob<T> features;     // (N, D): norm(cls)
  MlpHeadCache<T> projector, predictor;
  const Blob<T>* head_output = nullptr;
  Blob<T> output;  // L2-normalized head output
  std::vector<T> norms;
  bool recorded = false;
  BatchNormOptions bn_options;
  // Backward scratch.
  Blob<T> d_output, d_projected, d_features, d_cls, d_stream, d_branch, d_wide, d_qkv, d_norm;
};

template <typename T>
class ViT {
 public:
  // `spec` from EncoderSpecForEncoder with a ViT backbone.
  static absl::StatusOr<std::unique_ptr<ViT>> Create(const EncoderSpec& spec, uint64_t seed);

  ViT(const ViT&) = delete;
  ViT& operator=(const ViT&) = delete;

  // images (N, in_channels, image_size, image_size) -> L2-normalized head output (N,
  // feature_dim), kept in ws->output.
  const Blob<T>& Forward(const Blob<T>& images, const ForwardOptions& options, ViTWorkspace<T>* ws);
  // The cls token's features norm(x)[:, 0] (N, embed_dim).
  const Blob<T>& Features(const Blob<T>& images, const ForwardOptions& options,
                          ViTWorkspace<T>* ws);
  // As ResNet<T>::Backward / BackwardFromHeadOutput.
  void Backward(const Blob<T>& grad_output, ViTWorkspace<T>* ws);
  void BackwardFromHeadOutput(const Blob<T>& grad_head_output, ViTWorkspace<T>* ws);
  // The backbone's part alone, given d(loss)/d(features) (N, embed_dim) of the Forward recorded
  // in ws: the heads get no gradient (for checks against a bare timm backbone).
  void BackwardFromFeatures(const Blob<T>& grad_features, ViTWorkspace<T>* ws);

  // "patch_embed", per block "blocks.<i>.attn" (after the attention half) and "blocks.<i>",
  // "norm" (the cls features), then the heads' outputs: backends/torch/vit.h's capture.
  std::vector<std::pair<std::string, const Blob<T>*>> LayerOutputs(const ViTWorkspace<T>& ws) const;

  void ZeroGrad();
  // Parameters then buffers, in moco::EncoderStateLayout's (timm's) order.
  std::vector<StateRef<T>> States();
  std::vector<StateRef<T>> Parameters();

  const EncoderSpec& spec() const { return spec_; }
  int64_t backbone_dim() const { return spec_.backbone.vit.embed_dim; }
  int64_t feature_dim() const { return spec_.feature_dim(); }

 private:
  struct LayerNormParams {
    Param<T> weight, bias;
  };
  struct Block {
    LayerNormParams norm1, norm2;
    LinearParams<T> qkv, proj, fc1, fc2;
  };

  explicit ViT(const EncoderSpec& spec) : spec_(spec) {}
  void Build(uint64_t seed);
  void ForwardBackbone(const Blob<T>& images, ViTWorkspace<T>* ws);
  void BlockForward(Block& b, const Blob<T>& x, ViTBlockCache<T>* c);
  // d: d(loss)/d(block output) in, d(loss)/d(block input) out.
  void BlockBackward(Block& b, ViTBlockCache<T>* c, ViTWorkspace<T>* ws, Blob<T>* d);
  void BackboneBackward(const Blob<T>& grad_features, ViTWorkspace<T>* ws);

  const ViTSpec& vit() const { return spec_.backbone.vit; }

  EncoderSpec spec_;
  Param<T> cls_token, patch_weight, patch_bias;
  std::vector<T> pos_embed;
  std::vector<Block> blocks_;
  LayerNormParams norm_;
  MlpHead<T> projector_;
  std::optional<MlpHead<T>> predictor_;
};

// ---------------------------------------------------------------------------------------------
// Implementation.

namespace vit_internal {

// images (N, C, S, S) -> patches (N, g * g, C p p): patch r * g + c holds image rows
// r p .. r p + p - 1 and columns c p .. c p + p - 1, flattened as (channel, row, column).
template <typename T>
void Patchify(const Blob<T>& images, int64_t p, Blob<T>* patches) {
  const int64_t n = images.dim(0), ch = images.dim(1), s = images.dim(2), g = s / p;
  patches->Resize({n, g * g, ch * p * p});
#pragma omp parallel for schedule(static) if (images.numel() > kMinParallelWork)
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t r = 0; r < g; ++r) {
      for (int64_t c = 0; c < g; ++c) {
        T* out = patches->ptr() + ((i * g + r) * g + c) * ch * p * p;
        for (int64_t k = 0; k < ch; ++k) {
          for (int64_t y = 0; y < p; ++y) {
            const T* row = images.ptr() + ((i * ch + k) * s + r * p + y) * s + c * p;
            std::copy(row, row + p, out + (k * p + y) * p);
          }
        }
      }
    }
  }
}

// U(-a, a), a = sqrt(6 / (fan_in + fan_out)); bias (if any) zero.
template <typename T>
void XavierUniform(int64_t fan_in, int64_t fan_out, Param<T>* w, std::mt19937_64* rng) {
  const double a = std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  std::uniform_real_distribution<double> dist(-a, a);
  for (T& v : w->value) v = static_cast<T>(dist(*rng));
}

template <typename T>
void InitLinear(int64_t in, int64_t out, int64_t fan_out, LinearParams<T>* l,
                std::mt19937_64* rng) {
  l->in = in;
  l->out = out;
  l->weight.Init({out, in});
  l->bias.Init({out});
  XavierUniform(in, fan_out, &l->weight, rng);
}

template <typename T>
void LinearFwd(const LinearParams<T>& l, const Blob<T>& x, Blob<T>* y) {
  LinearForward(x, l.weight.value.data(), l.bias.value.data(), l.out, y);
}

template <typename T>
void LinearBwd(LinearParams<T>& l, const Blob<T>& x, const Blob<T>& dy, Blob<T>* dx) {
  LinearBackward(x, l.weight.value.data(), dy, dx, l.weight.grad.data(), l.bias.grad.data());
}

template <typename T>
void AddLinear(const std::string& name, LinearParams<T>* l, std::vector<StateRef<T>>* out) {
  AddParam(name + ".weight", &l->weight, out);
  AddParam(name + ".bias", &l->bias, out);
}

}  // namespace vit_internal

template <typename T>
absl::StatusOr<std::unique_ptr<ViT<T>>> ViT<T>::Create(const EncoderSpec& spec, uint64_t seed) {
  if (!spec.backbone.is_vit()) {
    return absl::InvalidArgumentError(
        absl::StrCat("ViT: model.arch ", spec.backbone.arch, " is not a Vision Transformer"));
  }
  std::unique_ptr<ViT<T>> net(new ViT<T>(spec));
  net->Build(seed);
  return net;
}

template <typename T>
void ViT<T>::Build(uint64_t seed) {
  using namespace vit_internal;  // NOLINT
  std::mt19937_64 rng(seed);
  const ViTSpec& v = vit();
  const int64_t d = v.embed_dim, p = v.patch_size, patch_in = v.in_channels * p * p;
  // Draw order as vits.py: patch embedding, cls token, blocks, then the heads.
  patch_weight.Init({d, v.in_channels, p, p});
  XavierUniform(patch_in, d, &patch_weight, &rng);
  patch_bias.Init({d});
  cls_token.Init({1, 1, d});
  std::normal_distribution<double> cls_dist(0.0, 1e-6);
  for (T& x : cls_token.value) x = static_cast<T>(cls_dist(rng));
  const std::vector<double> table = SinCosPositionEmbedding(v);
  pos_embed.assign(table.begin(), table.end());
  auto make_norm = [d](LayerNormParams* n) {
    n->weight.Init({d});
    std::fill(n->weight.value.begin(), n->weight.value.end(), T(1));
    n->bias.Init({d});
  };
  blocks_.resize(static_cast<size_t>(v.depth));
  for (Block& b : blocks_) {
    make_norm(&b.norm1);
    make_norm(&b.norm2);
    InitLinear(d, 3 * d, /*fan_out=*/d, &b.qkv, &rng);  // q, k, v count as three (D, D)
    InitLinear(d, d, d, &b.proj, &rng);
    InitLinear(d, v.mlp_hidden, v.mlp_hidden, &b.fc1, &rng);
    InitLinear(v.mlp_hidden, d, d, &b.fc2, &rng);
  }
  make_norm(&norm_);
  projector_ = MlpHead<T>::Make(spec_.projector, &rng);
  if (spec_.predictor) predictor_ = MlpHead<T>::Make(*spec_.predictor, &rng);
}

template <typename T>
std::vector<StateRef<T>> ViT<T>::Parameters() {
  using namespace vit_internal;  // NOLINT
  std::vector<StateRef<T>> out;
  AddParam("cls_token", &cls_token, &out);
  if (!vit().stop_grad_conv1) {
    AddParam("patch_embed.proj.weight", &patch_weight, &out);
    AddParam("patch_embed.proj.bias", &patch_bias, &out);
  }
  for (size_t i = 0; i < blocks_.size(); ++i) {
    Block& b = blocks_[i];
    const std::string name = ViTSpec::BlockName(static_cast<int>(i));
    AddParam(name + ".norm1.weight", &b.norm1.weight, &out);
    AddParam(name + ".norm1.bias", &b.norm1.bias, &out);
    AddLinear(name + ".attn.qkv", &b.qkv, &out);
    AddLinear(name + ".attn.proj", &b.proj, &out);
    AddParam(name + ".norm2.weight", &b.norm2.weight, &out);
    AddParam(name + ".norm2.bias", &b.norm2.bias, &out);
    AddLinear(name + ".mlp.fc1", &b.fc1, &out);
    AddLinear(name + ".mlp.fc2", &b.fc2, &out);
  }
  AddParam("norm.weight", &norm_.weight, &out);
  AddParam("norm.bias", &norm_.bias, &out);
  projector_.AddParameters(&out);
  if (predictor_) predictor_->AddParameters(&out);
  return out;
}

template <typename T>
std::vector<StateRef<T>> ViT<T>::States() {
  std::vector<StateRef<T>> out = Parameters();
  const ViTSpec& v = vit();
  AddBuffer("pos_embed", {1, v.num_tokens(), v.embed_dim}, &pos_embed, &out);
  if (v.stop_grad_conv1) {
    AddBuffer("patch_embed.proj.weight", patch_weight.shape, &patch_weight.value, &out);
    AddBuffer("patch_embed.proj.bias", patch_bias.shape, &patch_bias.value, &out);
  }
  projector_.AddBuffers(&out);
  if (predictor_) predictor_->AddBuffers(&out);
  return out;
}

template <typename T>
void ViT<T>::ZeroGrad() {
  for (StateRef<T>& p : Parameters()) std::fill(p.grad, p.grad + p.size, T(0));
}

template <typename T>
void ViT<T>::BlockForward(Block& b, const Blob<T>& x, ViTBlockCache<T>* c) {
  using namespace vit_internal;  // NOLINT
  const double eps = vit().layer_norm_eps;
  c->input = &x;
  LayerNormForward(x, b.norm1.weight.value.data(), b.norm1.bias.value.data(), eps, &c->norm1,
                   &c->norm1_stats);
  LinearFwd(b.qkv, c->norm1, &c->qkv);
  AttentionForward(c->qkv, vit().num_heads, &c->heads, &c->attention);
  LinearFwd(b.proj, c->heads, &c->mid);
  AddInPlace(x, &c->mid);
  LayerNormForward(c->mid, b.norm2.weight.value.data(), b.norm2.bias.value.data(), eps, &c->norm2,
                   &c->norm2_stats);
  LinearFwd(b.fc1, c->norm2, &c->hidden);
  GeluForward(c->hidden, &c->activated);
  LinearFwd(b.fc2, c->activated, &c->out);
  AddInPlace(c->mid, &c->out);
}

template <typename T>
void ViT<T>::BlockBackward(Block& b, ViTBlockCache<T>* c, ViTWorkspace<T>* ws, Blob<T>* d) {
  using namespace vit_internal;  // NOLINT
  // MLP half: d(mid) = d + norm2'(fc1'(gelu'(fc2'(d)))).
  LinearBwd(b.fc2, c->activated, *d, &ws->d_wide);
  GeluBackward(c->hidden, ws->d_wide, &ws->d_wide);
  LinearBwd(b.fc1, c->norm2, ws->d_wide, &ws->d_norm);
  LayerNormBackward(c->mid, b.norm2.weight.value.data(), c->norm2_stats, ws->d_norm,
                    &ws->d_branch, b.norm2.weight.grad.data(), b.norm2.bias.grad.data());
  AddInPlace(ws->d_branch, d);
  // Attention half: d(input) = d(mid) + norm1'(qkv'(attention'(proj'(d(mid))))).
  LinearBwd(b.proj, c->heads, *d, &ws->d_norm);
  AttentionBackward(c->qkv, vit().num_heads, &c->attention, ws->d_norm, &ws->d_qkv);
  LinearBwd(b.qkv, c->norm1, ws->d_qkv, &ws->d_norm);
  LayerNormBackward(*c->input, b.norm1.weight.value.data(), c->norm1_stats, ws->d_norm,
                    &ws->d_branch, b.norm1.weight.grad.data(), b.norm1.bias.grad.data());
  AddInPlace(ws->d_branch, d);
}

template <typename T>
void ViT<T>::ForwardBackbone(const Blob<T>& images, ViTWorkspace<T>* ws) {
  using namespace vit_internal;  // NOLINT
  const ViTSpec& v = vit();
  CHECK_EQ(images.rank(), 4);
  CHECK_EQ(images.dim(1), v.in_channels);
  CHECK_EQ(images.dim(2), v.image_size);
  CHECK_EQ(images.dim(3), v.image_size);
  const int64_t n = images.dim(0), d = v.embed_dim, l = v.num_patches(), t = v.num_tokens();
  Patchify(images, v.patch_size, &ws->patches);
  LinearForward(ws->patches, patch_weight.value.data(), patch_bias.value.data(), d,
                &ws->embedded);
  ws->tokens.Resize({n, t, d});
  for (int64_t i = 0; i < n; ++i) {
    T* rows = ws->tokens.ptr() + i * t * d;
    for (int64_t j = 0; j < d; ++j) rows[j] = cls_token.value[j] + pos_embed[j];
    const T* patch_rows = ws->embedded.ptr() + i * l * d;
    for (int64_t j = 0; j < l * d; ++j) rows[d + j] = patch_rows[j] + pos_embed[d + j];
  }
  ws->blocks.resize(blocks_.size());
  const Blob<T>* x = &ws->tokens;
  for (size_t b = 0; b < blocks_.size(); ++b) {
    BlockForward(blocks_[b], *x, &ws->blocks[b]);
    x = &ws->blocks[b].out;
  }
  // The final LayerNorm is per token, so normalizing only the cls rows gives norm(x)[:, 0].
  ws->cls.Resize({n, d});
  for (int64_t i = 0; i < n; ++i) {
    std::copy(x->ptr() + i * t * d, x->ptr() + i * t * d + d, ws->cls.ptr() + i * d);
  }
  LayerNormForward(ws->cls, norm_.weight.value.data(), norm_.bias.value.data(), v.layer_norm_eps,
                   &ws->features, &ws->norm_stats);
}

template <typename T>
const Blob<T>& ViT<T>::Features(const Blob<T>& images, const ForwardOptions& options,
                                ViTWorkspace<T>* ws) {
  (void)options;  // the backbone has no BatchNorm
  ws->recorded = false;
  ForwardBackbone(images, ws);
  return ws->features;
}

template <typename T>
const Blob<T>& ViT<T>::Forward(const Blob<T>& images, const ForwardOptions& options,
                               ViTWorkspace<T>* ws) {
  ForwardBackbone(images, ws);
  BatchNormOptions bn;
  bn.train = options.train_bn;
  bn.splits = 1;
  bn.update_running = options.update_running;
  bn.group = options.train_bn ? options.bn_group : nullptr;
  ws->bn_options = bn;
  return HeadsForward(projector_, predictor_, bn, ws);
}

template <typename T>
void ViT<T>::Backward(const Blob<T>& grad_output, ViTWorkspace<T>* ws) {
  BackwardFromHeadOutput(NormalizationBackward(grad_output, ws), ws);
}

template <typename T>
void ViT<T>::BackwardFromHeadOutput(const Blob<T>& grad_head_output, ViTWorkspace<T>* ws) {
  BackboneBackward(HeadsBackward(projector_, predictor_, grad_head_output, ws), ws);
}

template <typename T>
void ViT<T>::BackwardFromFeatures(const Blob<T>& grad_features, ViTWorkspace<T>* ws) {
  CHECK(ws->recorded) << "Backward without a recorded Forward";
  CHECK(grad_features.shape == ws->features.shape);
  ws->recorded = false;
  BackboneBackward(grad_features, ws);
}

template <typename T>
void ViT<T>::BackboneBackward(const Blob<T>& grad_features, ViTWorkspace<T>* ws) {
  using namespace vit_internal;  // NOLINT
  const ViTSpec& v = vit();
  const int64_t n = ws->features.dim(0), d = v.embed_dim, l = v.num_patches(), t = v.num_tokens();
  LayerNormBackward(ws->cls, norm_.weight.value.data(), ws->norm_stats, grad_features,
                    &ws->d_cls, norm_.weight.grad.data(), norm_.bias.grad.data());
  // Only the cls rows reach the features.
  ws->d_stream.Resize({n, t, d});
  ws->d_stream.SetZero();
  for (int64_t i = 0; i < n; ++i) {
    std::copy(ws->d_cls.ptr() + i * d, ws->d_cls.ptr() + (i + 1) * d,
              ws->d_stream.ptr() + i * t * d);
  }
  for (size_t b = blocks_.size(); b-- > 0;) BlockBackward(blocks_[b], &ws->blocks[b], ws, &ws->d_stream);
  // tokens = [cls; patches] + pos_embed (a buffer).
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) cls_token.grad[j] += ws->d_stream.ptr()[i * t * d + j];
  }
  if (v.stop_grad_conv1) return;
  ws->d_branch.Resize({n, l, d});
  for (int64_t i = 0; i < n; ++i) {
    std::copy(ws->d_stream.ptr() + i * t * d + d, ws->d_stream.ptr() + (i + 1) * t * d,
              ws->d_branch.ptr() + i * l * d);
  }
  LinearBackward(ws->patches, patch_weight.value.data(), ws->d_branch, nullptr,
                 patch_weight.grad.data(), patch_bias.grad.data());
}

template <typename T>
std::vector<std::pair<std::string, const Blob<T>*>> ViT<T>::LayerOutputs(
    const ViTWorkspace<T>& ws) const {
  std::vector<std::pair<std::string, const Blob<T>*>> out;
  out.emplace_back("patch_embed", &ws.embedded);
  for (size_t b = 0; b < ws.blocks.size(); ++b) {
    const std::string name = ViTSpec::BlockName(static_cast<int>(b));
    out.emplace_back(name + ".attn", &ws.blocks[b].mid);
    out.emplace_back(name, &ws.blocks[b].out);
  }
  out.emplace_back("norm", &ws.features);
  projector_.AddOutputs(ws.projector, &out);
  if (predictor_) predictor_->AddOutputs(ws.predictor, &out);
  return out;
}

}  // namespace eigen_backend
}  // namespace moco

#endif  // BACKENDS_EIGEN_VIT_H_
