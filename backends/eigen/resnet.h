// ResNet<T>: torchvision's ResNets (v1.5: stride on the 3x3 conv) with the CIFAR stem option, a
// width multiplier and MoCo's projection heads, built from a moco::EncoderSpec
// (moco/core/model_spec.h: architectures, widths, names), written on the Eigen backend's layer
// functions with an explicit backward pass. T = float in the backend, double in gradient tests.
//
// Structure and names are torchvision's (and backends/torch's), so states are exchangeable:
//   conv1, bn1, [maxpool], layer1..layer4 of BasicBlock (conv1, bn1, conv2, bn2) or Bottleneck
//   (conv1..3, bn1..3), each optionally with downsample.0 (1x1 conv) / downsample.1 (BN),
//   avgpool, head "fc" (v1: Linear(width, dim)) or "fc.0"/"fc.2" (v2: Linear(width, width), ReLU,
//   Linear(width, dim)) or the v3 projector, and v3's predictor (backends/eigen/mlp_head.h).
//   Stage widths round(64 w), round(128 w), ... (at least 1); Bottleneck expansion 4. cifar_stem: conv1 is 3x3 stride 1 padding 1 and there is no max pool.
// Buffers per BN: running_mean, running_var, num_batches_tracked (shape {}, an exact integer).
// Initialization as torchvision: conv kaiming_normal_(fan_out, relu), BN weight 1 bias 0, Linear
// torch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias; zero_init_residual sets
// every block's last BN weight to 0.
//
//   ASSIGN_OR_RETURN(EncoderSpec spec, EncoderSpecFromConfig(config.model()));
//   ASSIGN_OR_RETURN(std::unique_ptr<ResNet<float>> net, ResNet<float>::Create(spec, seed));
//   ResNetWorkspace<float> ws;
//   const Blob<float>& z = net->Forward(images, {/*train_bn=*/true, /*splits=*/8}, &ws);
//   net->Backward(grad_z, &ws);   // accumulates into the parameters' grad
#ifndef BACKENDS_EIGEN_RESNET_H_
#define BACKENDS_EIGEN_RESNET_H_

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
#include "backends/eigen/batch_norm.h"
#include "backends/eigen/blob.h"
#include "backends/eigen/conv2d.h"
#include "backends/eigen/elementwise.h"
#include "backends/eigen/encoder_heads.h"
#include "backends/eigen/forward_options.h"
#include "backends/eigen/mlp_head.h"
#include "backends/eigen/params.h"
#include "backends/eigen/pooling.h"
#include "glog/logging.h"
#include "moco/core/model_spec.h"

namespace moco {
namespace eigen_backend {

// conv (no bias) -> BN -> optional ReLU.
template <typename T>
struct ConvBnUnit {
  Conv2dGeometry geom;
  Param<T> weight;
  BatchNormParams<T> bn;
  bool relu = true;
};

// Activations of one ConvBnUnit's forward and scratch for its backward.
template <typename T>
struct ConvBnCache {
  const Blob<T>* input = nullptr;
  Blob<T> z;  // conv output
  Blob<T> y;  // BN output (after ReLU when the unit has one; for a block's last unit, the
              // block output after the residual add and ReLU)
  BatchNormCache<T> bn;
  Blob<T> dz, dx;
};

template <typename T>
struct BlockCache {
  std::vector<ConvBnCache<T>> units;
  ConvBnCache<T> downsample;
};

// Everything one forward keeps for its backward. Reused across calls (no reallocation when
// shapes repeat). One workspace per concurrent forward/backward pair.
template <typename T>
struct ResNetWorkspace {
  Blob<T> input;
  ConvBnCache<T> stem;
  Blob<T> pooled;  // after the max pool (ImageNet stem)
  std::vector<int32_t> pool_argmax;
  std::vector<BlockCache<T>> blocks;
  Blob<T> features;  // (N, backbone_dim)
  MlpHeadCache<T> projector, predictor;
  const Blob<T>* head_output = nullptr;  // the last head's output, before normalization
  Blob<T> output;                        // L2-normalized head output
  std::vector<T> norms;
  bool recorded = false;
  BatchNormOptions bn_options;
  // Backward scratch.
  Blob<T> d_output, d_projected, d_features, d_backbone, d_pooled;
};

template <typename T>
class ResNet {
 public:
  // `spec` from EncoderSpecFromConfig (or EncoderSpecForEncoder).
  static absl::StatusOr<std::unique_ptr<ResNet>> Create(const EncoderSpec& spec, uint64_t seed);

  ResNet(const ResNet&) = delete;
  ResNet& operator=(const ResNet&) = delete;

  // images (N, in_channels, H, W) -> L2-normalized head output (N, feature_dim), kept in
  // ws->output. In train_bn mode BN uses per-split batch statistics and (if update_running)
  // moves its running statistics. The workspace keeps what Backward needs.
  const Blob<T>& Forward(const Blob<T>& images, const ForwardOptions& options,
                         ResNetWorkspace<T>* ws);
  // Pooled backbone features (N, backbone_dim) of `images` (stops before the head).
  const Blob<T>& Features(const Blob<T>& images, const ForwardOptions& options,
                          ResNetWorkspace<T>* ws);
  // Accumulates d(loss)/d(params) into the parameters' grad given d(loss)/d(output) of the
  // Forward recorded in ws (which must be the last Forward on ws).
  void Backward(const Blob<T>& grad_output, ResNetWorkspace<T>* ws);
  // As Backward, but given d(loss)/d(head output before the L2 normalization), i.e. of
  // *ws->head_output (for checks against torchvision, whose model output is unnormalized).
  void BackwardFromHeadOutput(const Blob<T>& grad_head_output, ResNetWorkspace<T>* ws);

  // Each layer's output in the last Forward recorded in ws, in execution order, named as
  // moco/core/activation_capture.h describes (pointers into ws, valid until its next use).
  std::vector<std::pair<std::string, const Blob<T>*>> LayerOutputs(
      const ResNetWorkspace<T>& ws) const;

  void ZeroGrad();
  // Every parameter (with grad) and buffer, parameters first, in torchvision's order.
  std::vector<StateRef<T>> States();
  std::vector<StateRef<T>> Parameters();

  const EncoderSpec& spec() const { return spec_; }
  int64_t backbone_dim() const { return spec_.backbone.output_dim; }
  int64_t feature_dim() const { return spec_.feature_dim(); }

 private:
  struct Block {
    std::vector<ConvBnUnit<T>> units;
    bool has_downsample = false;
    ConvBnUnit<T> downsample;
  };

  explicit ResNet(const EncoderSpec& spec) : spec_(spec) {}
  void Build(uint64_t seed);
  void ForwardBackbone(const Blob<T>& images, const ForwardOptions& options,
                       ResNetWorkspace<T>* ws);
  void UnitForward(ConvBnUnit<T>& u, const Blob<T>& x, const BatchNormOptions& bn,
                   ConvBnCache<T>* c);
  // dy: d(loss)/d(unit output), masked in place by the ReLU. dx_wanted: compute c->dx.
  void UnitBackward(ConvBnUnit<T>& u, ConvBnCache<T>* c, Blob<T>* dy, bool dx_wanted);

  EncoderSpec spec_;
  ConvBnUnit<T> stem_;
  std::vector<Block> blocks_;  // as spec_.backbone.blocks
  MlpHead<T> projector_;
  std::optional<MlpHead<T>> predictor_;
};

// ---------------------------------------------------------------------------------------------
// Implementation.

namespace resnet_internal {

template <typename T>
void KaimingNormalFanOut(ConvBnUnit<T>* u, std::mt19937_64* rng) {
  const double fan_out = static_cast<double>(u->geom.out_channels * u->geom.kernel_h *
                                             u->geom.kernel_w);
  std::normal_distribution<double> dist(0.0, std::sqrt(2.0 / fan_out));
  for (T& v : u->weight.value) v = static_cast<T>(dist(*rng));
}

template <typename T>
ConvBnUnit<T> MakeUnit(const ConvSpec& c, bool relu, std::mt19937_64* rng) {
  ConvBnUnit<T> u;
  const int64_t in = c.in_channels, out = c.out_channels, k = c.kernel;
  u.geom = Conv2dGeometry{in, out, k, k, c.stride, c.padding};
  u.weight.Init({out, in, k, k});
  KaimingNormalFanOut(&u, rng);
  u.bn.Init(out);
  u.relu = relu;
  return u;
}

template <typename T>
void AddUnitParams(const std::string& conv, const std::string& bn, ConvBnUnit<T>* u,
                   std::vector<StateRef<T>>* out) {
  AddParam(conv + ".weight", &u->weight, out);
  AddParam(bn + ".weight", &u->bn.weight, out);
  AddParam(bn + ".bias", &u->bn.bias, out);
}

template <typename T>
void AddUnitBuffers(const std::string& bn, ConvBnUnit<T>* u, std::vector<StateRef<T>>* out) {
  const int64_t c = u->geom.out_channels;
  AddBuffer(bn + ".running_mean", {c}, &u->bn.running_mean, out);
  AddBuffer(bn + ".running_var", {c}, &u->bn.running_var, out);
  AddBuffer(bn + ".num_batches_tracked", {}, &u->bn.num_batches_tracked, out);
}

}  // namespace resnet_internal

template <typename T>
absl::StatusOr<std::unique_ptr<ResNet<T>>> ResNet<T>::Create(const EncoderSpec& spec,
                                                             uint64_t seed) {
  std::unique_ptr<ResNet<T>> net(new ResNet<T>(spec));
  net->Build(seed);
  return net;
}

template <typename T>
void ResNet<T>::Build(uint64_t seed) {
  using namespace resnet_internal;  // NOLINT
  std::mt19937_64 rng(seed);
  const BackboneSpec& backbone = spec_.backbone;
  stem_ = MakeUnit<T>(backbone.stem, true, &rng);
  for (const BlockSpec& b : backbone.blocks) {
    Block block;
    for (size_t u = 0; u < b.convs.size(); ++u) {
      block.units.push_back(MakeUnit<T>(b.convs[u], /*relu=*/u + 1 < b.convs.size(), &rng));
    }
    if (b.has_downsample) {
      block.has_downsample = true;
      block.downsample = MakeUnit<T>(b.downsample, false, &rng);
    }
    blocks_.push_back(std::move(block));
  }
  projector_ = MlpHead<T>::Make(spec_.projector, &rng);
  if (spec_.predictor) predictor_ = MlpHead<T>::Make(*spec_.predictor, &rng);
  if (backbone.zero_init_residual) {
    for (Block& block : blocks_) {
      std::fill(block.units.back().bn.weight.value.begin(),
                block.units.back().bn.weight.value.end(), T(0));
    }
  }
}

template <typename T>
std::vector<StateRef<T>> ResNet<T>::Parameters() {
  using namespace resnet_internal;  // NOLINT
  std::vector<StateRef<T>> out;
  AddUnitParams("conv1", "bn1", &stem_, &out);
  for (size_t b = 0; b < blocks_.size(); ++b) {
    const std::string& p = spec_.backbone.blocks[b].name;
    for (size_t u = 0; u < blocks_[b].units.size(); ++u) {
      AddUnitParams(absl::StrCat(p, ".conv", u + 1), absl::StrCat(p, ".bn", u + 1),
                    &blocks_[b].units[u], &out);
    }
    if (blocks_[b].has_downsample) {
      AddUnitParams(p + ".downsample.0", p + ".downsample.1", &blocks_[b].downsample, &out);
    }
  }
  projector_.AddParameters(&out);
  if (predictor_) predictor_->AddParameters(&out);
  return out;
}

template <typename T>
std::vector<StateRef<T>> ResNet<T>::States() {
  using namespace resnet_internal;  // NOLINT
  std::vector<StateRef<T>> out = Parameters();
  AddUnitBuffers("bn1", &stem_, &out);
  for (size_t b = 0; b < blocks_.size(); ++b) {
    const std::string& p = spec_.backbone.blocks[b].name;
    for (size_t u = 0; u < blocks_[b].units.size(); ++u) {
      AddUnitBuffers(absl::StrCat(p, ".bn", u + 1), &blocks_[b].units[u], &out);
    }
    if (blocks_[b].has_downsample) {
      AddUnitBuffers(p + ".downsample.1", &blocks_[b].downsample, &out);
    }
  }
  projector_.AddBuffers(&out);
  if (predictor_) predictor_->AddBuffers(&out);
  return out;
}

template <typename T>
void ResNet<T>::ZeroGrad() {
  for (StateRef<T>& p : Parameters()) std::fill(p.grad, p.grad + p.size, T(0));
}

template <typename T>
void ResNet<T>::UnitForward(ConvBnUnit<T>& u, const Blob<T>& x, const BatchNormOptions& bn,
                            ConvBnCache<T>* c) {
  c->input = &x;
  Conv2dForward(u.geom, x, u.weight.value.data(), nullptr, &c->z);
  BatchNormForward(c->z, u.bn.weight.value.data(), u.bn.bias.value.data(),
                   u.bn.running_mean.data(), u.bn.running_var.data(), bn, &c->y, &c->bn);
  if (bn.train && bn.update_running) u.bn.num_batches_tracked[0] += T(1);
  if (u.relu) ReluInPlace(&c->y);
}

template <typename T>
void ResNet<T>::UnitBackward(ConvBnUnit<T>& u, ConvBnCache<T>* c, Blob<T>* dy, bool dx_wanted) {
  if (u.relu) ReluBackwardInPlace(c->y, dy);
  BatchNormBackward(c->z, u.bn.weight.value.data(), c->bn, *dy, &c->dz, u.bn.weight.grad.data(),
                    u.bn.bias.grad.data());
  Conv2dBackward(u.geom, *c->input, u.weight.value.data(), c->dz, dx_wanted ? &c->dx : nullptr,
                 u.weight.grad.data(), nullptr);
}

template <typename T>
void ResNet<T>::ForwardBackbone(const Blob<T>& images, const ForwardOptions& options,
                                ResNetWorkspace<T>* ws) {
  CHECK_EQ(images.rank(), 4);
  CHECK_EQ(images.dim(1), spec_.backbone.in_channels);
  BatchNormOptions bn;
  bn.train = options.train_bn;
  bn.splits = options.train_bn ? options.bn_splits : 1;
  bn.update_running = options.update_running;
  bn.group = options.train_bn ? options.bn_group : nullptr;
  ws->bn_options = bn;
  ws->input = images;
  ws->blocks.resize(blocks_.size());
  UnitForward(stem_, ws->input, bn, &ws->stem);
  const Blob<T>* x = &ws->stem.y;
  if (spec_.backbone.has_max_pool) {
    MaxPoolForward(*x, 3, 2, 1, &ws->pooled, &ws->pool_argmax);
    x = &ws->pooled;
  }
  for (size_t b = 0; b < blocks_.size(); ++b) {
    Block& block = blocks_[b];
    BlockCache<T>& bc = ws->blocks[b];
    bc.units.resize(block.units.size());
    const Blob<T>* h = x;
    for (size_t u = 0; u < block.units.size(); ++u) {
      UnitForward(block.units[u], *h, bn, &bc.units[u]);
      h = &bc.units[u].y;
    }
    Blob<T>& out = bc.units.back().y;
    if (block.has_downsample) {
      UnitForward(block.downsample, *x, bn, &bc.downsample);
      AddInPlace(bc.downsample.y, &out);
    } else {
      AddInPlace(*x, &out);
    }
    ReluInPlace(&out);
    x = &out;
  }
  GlobalAvgPoolForward(*x, &ws->features);
}

template <typename T>
std::vector<std::pair<std::string, const Blob<T>*>> ResNet<T>::LayerOutputs(
    const ResNetWorkspace<T>& ws) const {
  std::vector<std::pair<std::string, const Blob<T>*>> out;
  out.emplace_back("conv1", &ws.stem.z);
  out.emplace_back("bn1", &ws.stem.y);
  if (spec_.backbone.has_max_pool) out.emplace_back("maxpool", &ws.pooled);
  for (size_t b = 0; b < blocks_.size(); ++b) {
    const BlockCache<T>& bc = ws.blocks[b];
    const std::string& p = spec_.backbone.blocks[b].name;
    for (size_t u = 0; u < bc.units.size(); ++u) {
      out.emplace_back(absl::StrCat(p, ".conv", u + 1), &bc.units[u].z);
      // The last unit's y is the block output (the residual add and ReLU run in place on it).
      if (u + 1 < bc.units.size()) out.emplace_back(absl::StrCat(p, ".bn", u + 1), &bc.units[u].y);
    }
    if (blocks_[b].has_downsample) {
      out.emplace_back(absl::StrCat(p, ".downsample.0"), &bc.downsample.z);
      out.emplace_back(absl::StrCat(p, ".downsample.1"), &bc.downsample.y);
    }
    out.emplace_back(p, &bc.units.back().y);
  }
  out.emplace_back("avgpool", &ws.features);
  projector_.AddOutputs(ws.projector, &out);
  if (predictor_) predictor_->AddOutputs(ws.predictor, &out);
  return out;
}

template <typename T>
const Blob<T>& ResNet<T>::Features(const Blob<T>& images, const ForwardOptions& options,
                                   ResNetWorkspace<T>* ws) {
  ws->recorded = false;
  ForwardBackbone(images, options, ws);
  return ws->features;
}

template <typename T>
const Blob<T>& ResNet<T>::Forward(const Blob<T>& images, const ForwardOptions& options,
                                  ResNetWorkspace<T>* ws) {
  ForwardBackbone(images, options, ws);
  return HeadsForward(projector_, predictor_, ws->bn_options, ws);
}

template <typename T>
void ResNet<T>::Backward(const Blob<T>& grad_output, ResNetWorkspace<T>* ws) {
  BackwardFromHeadOutput(NormalizationBackward(grad_output, ws), ws);
}

template <typename T>
void ResNet<T>::BackwardFromHeadOutput(const Blob<T>& grad_head_output, ResNetWorkspace<T>* ws) {
  HeadsBackward(projector_, predictor_, grad_head_output, ws);
  // Backbone.
  const Blob<T>& last = blocks_.empty() ? ws->stem.y : ws->blocks.back().units.back().y;
  GlobalAvgPoolBackward(last.shape, ws->d_features, &ws->d_backbone);
  Blob<T>* d = &ws->d_backbone;
  for (size_t b = blocks_.size(); b-- > 0;) {
    Block& block = blocks_[b];
    BlockCache<T>& bc = ws->blocks[b];
    ReluBackwardInPlace(bc.units.back().y, d);  // d: gradient w.r.t. (main + identity)
    Blob<T>* dm = d;
    for (size_t u = block.units.size(); u-- > 0;) {
      UnitBackward(block.units[u], &bc.units[u], dm, /*dx_wanted=*/true);
      dm = &bc.units[u].dx;
    }
    if (block.has_downsample) {
      UnitBackward(block.downsample, &bc.downsample, d, /*dx_wanted=*/true);
      AddInPlace(bc.downsample.dx, dm);
    } else {
      AddInPlace(*d, dm);
    }
    d = dm;
  }
  if (spec_.backbone.has_max_pool) {
    MaxPoolBackward(ws->stem.y.shape, ws->pool_argmax, *d, &ws->d_pooled);
    d = &ws->d_pooled;
  }
  UnitBackward(stem_, &ws->stem, d, /*dx_wanted=*/false);
}

}  // namespace eigen_backend
}  // namespace moco

#endif  // BACKENDS_EIGEN_RESNET_H_
