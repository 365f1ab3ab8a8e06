// ResNet encoders for MoCo with torchvision's module structure and parameter names, built from
// a moco::EncoderSpec (moco/core/model_spec.h: architectures, widths, names).
//
//   ASSIGN_OR_RETURN(EncoderSpec spec, EncoderSpecFromConfig(config.model()));
//   ASSIGN_OR_RETURN(ResNet query, MakeResNet(spec));
//   query->set_bn_splits(8);                   // shuffling BN over 8 groups of the batch
//   ResNet key(std::dynamic_pointer_cast<ResNetImpl>(query->clone()));  // key encoder (copies
//                                              // weights, buffers and the BN splits)
//   torch::Tensor q = query->forward(images);  // (N, feature_dim), NOT L2-normalized
//
// Names (named_parameters() / named_buffers()) are torchvision's: conv1, bn1, layer1..layer4
// of BasicBlock (conv1, bn1, conv2, bn2, downsample.0/.1) or Bottleneck (conv1..3, bn1..3,
// downsample.0/.1; stride on the 3x3 conv, "ResNet v1.5"), and MoCo's head `fc`: v1 linear
// (fc.weight, fc.bias) or the v2 MLP Sequential(Linear(w, w), ReLU, Linear(w, dim))
// (fc.0.*, fc.2.*), as the official MoCo code names them; or moco-v3's heads (fc.0, fc.1, fc.3,
// fc.4 and predictor.0/.1/.3; moco/core/model_spec.h HeadSpec). Every BatchNorm is a
// SplitBatchNorm2d (torchvision's buffer names). A torchvision state_dict therefore maps
// one-to-one onto these modules.
//
// Initialization as torchvision (zero_init_residual from the spec): convs kaiming_normal_(fan_out,
// relu), BN weight 1 and bias 0, Linear layers torch's default. Construction draws from torch's
// global generator; so does clone() (torch's Cloneable re-runs reset(), which initializes, before
// copying the values over), so seed before building both encoders for reproducible runs.
#ifndef BACKENDS_TORCH_RESNET_H_
#define BACKENDS_TORCH_RESNET_H_

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "backends/torch/heads.h"
#include "backends/torch/layer_capture.h"
#include "backends/torch/split_batch_norm.h"
#include "moco/core/communicator.h"
#include "moco/core/model_spec.h"

namespace moco::torch_backend {


// torchvision's BasicBlock (BlockType::kBasic): two 3x3 convs, stride on the first.
class BasicBlockImpl : public torch::nn::Cloneable<BasicBlockImpl> {
 public:
  // The convs and the optional 1x1-conv + BN downsample of `spec` (two 3x3 convs).
  explicit BasicBlockImpl(const BlockSpec& spec);

  void reset() override;
  torch::Tensor forward(const torch::Tensor& x) { return Run(x, nullptr, ""); }
  // forward(), adding each layer's output to `capture` (nullable) under `name` + ".conv1", ...
  torch::Tensor Run(const torch::Tensor& x, LayerCapture* capture, const std::string& name);

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  SplitBatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::Sequential downsample{nullptr};  // null when the identity shortcut fits

 private:
  BlockSpec spec_;
};
TORCH_MODULE(BasicBlock);

// torchvision's Bottleneck (BlockType::kBottleneck): 1x1, 3x3 (carries the stride), 1x1 convs.
class BottleneckImpl : public torch::nn::Cloneable<BottleneckImpl> {
 public:
  // The convs and the optional downsample of `spec` (1x1, 3x3, 1x1 convs).
  explicit BottleneckImpl(const BlockSpec& spec);

  void reset() override;
  torch::Tensor forward(const torch::Tensor& x) { return Run(x, nullptr, ""); }
  torch::Tensor Run(const torch::Tensor& x, LayerCapture* capture, const std::string& name);

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  SplitBatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential downsample{nullptr};

 private:
  BlockSpec spec_;
};
TORCH_MODULE(Bottleneck);

// The encoder: backbone + MoCo head (the spec's projector). Build it with MakeResNet().
class ResNetImpl : public torch::nn::Cloneable<ResNetImpl> {
 public:
  // `spec` comes from EncoderSpecFromConfig (valid by construction).
  explicit ResNetImpl(const EncoderSpec& spec);

  // (Re)builds every submodule and initializes it; called by the constructor and clone().
  void reset() override;

  // Head output (N, feature_dim) for images x (N, in_channels, H, W): the predictor's when
  // there is one, else the projector's; not normalized.
  torch::Tensor forward(const torch::Tensor& x);

  // Pooled backbone features (N, feature_width()), the input of the head.
  torch::Tensor features(const torch::Tensor& x);

  // Training-mode shuffling BN: every BatchNorm computes its statistics over num_splits (>= 1)
  // groups of consecutive samples, group g = samples [g * N / n, (g + 1) * N / n), as n GPUs
  // would; N must be divisible by n. Implementation: the BN layers use the (free)
  // SplitLayout::kInterleaved, and features() reorders its input batch so that interleaved
  // groups are the caller's consecutive groups, then restores the order of its output (copies
  // of the images and of the features only). Calling the submodules directly thus sees
  // interleaved groups. Eval mode ignores the splits.
  void set_bn_splits(int64_t num_splits);
  int64_t bn_splits() const { return bn_splits_; }

  // Channels-last activations (backends/torch/numerics.h): the interleaved BN groups above are
  // a free view only in NCHW, so with channels_last the BN layers use SplitLayout::kConsecutive
  // instead (on CPU each group's kernel writes its slice of one output: no copy, no layout
  // change) and features() keeps the caller's order. Same results either way.
  void set_channels_last(bool channels_last);

  // SyncBatchNorm: in training mode every BatchNorm (backbone and v3 heads) normalizes over the
  // union of the batches of `group`'s ranks (backends/torch/sync_batch_norm.h). Not owned; null
  // or world 1 turns it off. Needs bn_splits 1.
  void set_sync_group(Communicator* group);

  // While `capture` is non-null, forward() and features() add every layer's output to it (names
  // as moco::ActivationCapture describes). Not owned; null turns capture off.
  void set_activation_capture(LayerCapture* capture) { capture_ = capture; }

  // Backbone output width (EncoderSpec::backbone.output_dim).
  int64_t feature_width() const { return spec_.backbone.output_dim; }

  const EncoderSpec& spec() const { return spec_; }

  torch::nn::Conv2d conv1{nullptr};
  SplitBatchNorm2d bn1{nullptr};
  torch::nn::MaxPool2d maxpool{nullptr};  // null with the CIFAR stem
  torch::nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr}, layer4{nullptr};
  torch::nn::AdaptiveAvgPool2d avgpool{nullptr};
  EncoderHeads heads;  // the projector "fc" and the v3 predictor (backends/torch/heads.h)

 private:
  EncoderSpec spec_;
  int64_t bn_splits_ = 1;
  bool channels_last_ = false;
  Communicator* sync_group_ = nullptr;
  LayerCapture* capture_ = nullptr;

  torch::Tensor RunStage(torch::nn::Sequential& stage, const std::string& name,
                         torch::Tensor x);
};
TORCH_MODULE(ResNet);

// Builds the network of `spec` on the CPU. Internal if LibTorch fails.
absl::StatusOr<ResNet> MakeResNet(const EncoderSpec& spec);

}  // namespace moco::torch_backend

#endif  // BACKENDS_TORCH_RESNET_H_
