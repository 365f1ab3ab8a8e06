#include "backends/torch/resnet.h"

#include <cmath>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "backends/torch/heads.h"
#include "backends/torch/sync_batch_norm.h"

namespace moco::torch_backend {
namespace {

namespace nn = torch::nn;

nn::Conv2d Conv(const ConvSpec& c) {
  return nn::Conv2d(nn::Conv2dOptions(c.in_channels, c.out_channels, c.kernel)
                        .stride(c.stride)
                        .padding(c.padding)
                        .bias(false));
}

// torchvision's downsample: Sequential(conv1x1(in, out, stride), BN(out)) -> names "0", "1".
nn::Sequential Downsample(const ConvSpec& c) {
  return nn::Sequential(Conv(c), SplitBatchNorm2d(c.out_channels));
}

// One stage (torchvision's _make_layer): the spec's blocks of stage `stage`, in order.
nn::Sequential MakeLayer(const BackboneSpec& backbone, int stage) {
  nn::Sequential layer;
  for (const BlockSpec& block : backbone.blocks) {
    if (block.stage != stage) continue;
    if (backbone.block_type == BlockType::kBottleneck) {
      layer->push_back(Bottleneck(block));
    } else {
      layer->push_back(BasicBlock(block));
    }
  }
  return layer;
}

// conv -> BN of unit `index` of a block, capturing the conv output as "<name>.conv<index>".
torch::Tensor ConvBn(nn::Conv2d& conv, SplitBatchNorm2d& bn, const torch::Tensor& x,
                     LayerCapture* capture, const std::string& name, int index) {
  const torch::Tensor z = conv->forward(x);
  if (capture != nullptr) capture->Add(absl::StrCat(name, ".conv", index), z);
  return bn->forward(z);
}

// ConvBn, then ReLU, capturing the result as "<name>.bn<index>".
torch::Tensor ConvBnRelu(nn::Conv2d& conv, SplitBatchNorm2d& bn, const torch::Tensor& x,
                         LayerCapture* capture, const std::string& name, int index) {
  torch::Tensor out = ConvBn(conv, bn, x, capture, name, index).relu_();
  if (capture != nullptr) capture->Add(absl::StrCat(name, ".bn", index), out);
  return out;
}

// The residual add and ReLU shared by both block types.
torch::Tensor FinishBlock(torch::Tensor out, const torch::Tensor& x, nn::Sequential& downsample,
                          LayerCapture* capture, const std::string& name) {
  if (!downsample) {
    out += x;
  } else if (capture == nullptr) {
    out += downsample->forward(x);
  } else {
    const torch::Tensor z = downsample->at<nn::Conv2dImpl>(0).forward(x);
    capture->Add(name + ".downsample.0", z);
    const torch::Tensor y = downsample->at<SplitBatchNorm2dImpl>(1).forward(z);
    capture->Add(name + ".downsample.1", y);
    out += y;
  }
  out.relu_();
  if (capture != nullptr) capture->Add(name, out);
  return out;
}

}  // namespace


// ---- BasicBlock ------------------------------------------------------------------------------

BasicBlockImpl::BasicBlockImpl(const BlockSpec& spec) : spec_(spec) {
  TORCH_CHECK(spec_.convs.size() == 2, "BasicBlock: expected 2 convs in ", spec_.name);
  reset();
}

void BasicBlockImpl::reset() {
  conv1 = register_module("conv1", Conv(spec_.convs[0]));
  bn1 = register_module("bn1", SplitBatchNorm2d(spec_.convs[0].out_channels));
  conv2 = register_module("conv2", Conv(spec_.convs[1]));
  bn2 = register_module("bn2", SplitBatchNorm2d(spec_.convs[1].out_channels));
  downsample = nullptr;
  if (spec_.has_downsample) {
    downsample = register_module("downsample", Downsample(spec_.downsample));
  }
}

torch::Tensor BasicBlockImpl::Run(const torch::Tensor& x, LayerCapture* capture,
                                  const std::string& name) {
  const torch::Tensor out = ConvBnRelu(conv1, bn1, x, capture, name, 1);
  return FinishBlock(ConvBn(conv2, bn2, out, capture, name, 2), x, downsample, capture, name);
}

// ---- Bottleneck ------------------------------------------------------------------------------

BottleneckImpl::BottleneckImpl(const BlockSpec& spec) : spec_(spec) {
  TORCH_CHECK(spec_.convs.size() == 3, "Bottleneck: expected 3 convs in ", spec_.name);
  reset();
}

void BottleneckImpl::reset() {
  conv1 = register_module("conv1", Conv(spec_.convs[0]));
  bn1 = register_module("bn1", SplitBatchNorm2d(spec_.convs[0].out_channels));
  conv2 = register_module("conv2", Conv(spec_.convs[1]));
  bn2 = register_module("bn2", SplitBatchNorm2d(spec_.convs[1].out_channels));
  conv3 = register_module("conv3", Conv(spec_.convs[2]));
  bn3 = register_module("bn3", SplitBatchNorm2d(spec_.convs[2].out_channels));
  downsample = nullptr;
  if (spec_.has_downsample) {
    downsample = register_module("downsample", Downsample(spec_.downsample));
  }
}

torch::Tensor BottleneckImpl::Run(const torch::Tensor& x, LayerCapture* capture,
                                  const std::string& name) {
  torch::Tensor out = ConvBnRelu(conv1, bn1, x, capture, name, 1);
  out = ConvBnRelu(conv2, bn2, out, capture, name, 2);
  return FinishBlock(ConvBn(conv3, bn3, out, capture, name, 3), x, downsample, capture, name);
}

// ---- ResNet ----------------------------------------------------------------------------------

ResNetImpl::ResNetImpl(const EncoderSpec& spec) : spec_(spec) { reset(); }

void ResNetImpl::reset() {
  const BackboneSpec& b = spec_.backbone;
  conv1 = register_module("conv1", Conv(b.stem));
  bn1 = register_module("bn1", SplitBatchNorm2d(b.stem.out_channels));
  maxpool = nullptr;
  if (b.has_max_pool) {
    maxpool =
        register_module("maxpool", nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2).padding(1)));
  }
  nn::Sequential* layers[kNumStages] = {&layer1, &layer2, &layer3, &layer4};
  for (int i = 0; i < kNumStages; ++i) {
    *layers[i] = register_module(absl::StrCat("layer", i + 1), MakeLayer(b, i));
  }
  avgpool = register_module("avgpool", nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions(1)));
  heads = EncoderHeads();
  heads.Register(spec_, *this);
  // torchvision's initialization; Linear layers keep torch's default.
  torch::NoGradGuard no_grad;
  for (const auto& module : modules(/*include_self=*/false)) {
    if (auto* conv = module->as<nn::Conv2d>()) {
      nn::init::kaiming_normal_(conv->weight, /*a=*/0, torch::kFanOut, torch::kReLU);
    }
  }
  if (b.zero_init_residual) {
    for (const auto& module : modules(/*include_self=*/false)) {
      if (auto* block = module->as<BasicBlockImpl>()) block->bn2->weight.zero_();
      if (auto* block = module->as<BottleneckImpl>()) block->bn3->weight.zero_();
    }
  }
}

torch::Tensor ResNetImpl::features(const torch::Tensor& x) {
  const int64_t in_channels = spec_.backbone.in_channels;
  TORCH_CHECK(x.dim() == 4 && x.size(1) == in_channels, "ResNet: expected input (N, ",
              in_channels, ", H, W), got ", x.sizes());
  const int64_t n = bn_splits_;
  const bool regroup = is_training() && n > 1 && !channels_last_;
  const int64_t batch = x.size(0);
  TORCH_CHECK(!regroup || batch % n == 0, "ResNet: batch size ", batch,
              " is not divisible by the BN splits ", n);
  torch::Tensor out = x;
  if (regroup) {
    // Sample g * M + i (group g, position i) moves to row i * n + g: interleaved group g.
    out =
        x.view({n, batch / n, x.size(1), x.size(2), x.size(3)}).transpose(0, 1).reshape(x.sizes());
  }
  if (capture_ != nullptr) capture_->interleaved_groups = regroup ? n : 1;
  out = conv1->forward(out);
  if (capture_ != nullptr) capture_->Add("conv1", out);
  out = bn1->forward(out).relu_();
  if (capture_ != nullptr) capture_->Add("bn1", out);
  if (maxpool) {
    out = maxpool->forward(out);
    if (capture_ != nullptr) capture_->Add("maxpool", out);
  }
  out = RunStage(layer1, "layer1", out);
  out = RunStage(layer2, "layer2", out);
  out = RunStage(layer3, "layer3", out);
  out = RunStage(layer4, "layer4", out);
  out = torch::flatten(avgpool->forward(out), 1);
  if (regroup) {
    out = out.view({batch / n, n, out.size(1)}).transpose(0, 1).reshape({batch, out.size(1)});
  }
  if (capture_ != nullptr) {
    capture_->interleaved_groups = 1;
    capture_->Add("avgpool", out);
  }
  return out;
}

torch::Tensor ResNetImpl::RunStage(nn::Sequential& stage, const std::string& name,
                                   torch::Tensor x) {
  if (capture_ == nullptr) return stage->forward(x);
  for (size_t i = 0; i < stage->size(); ++i) {
    const std::string block_name = absl::StrCat(name, ".", i);
    const std::shared_ptr<nn::Module> block = stage->ptr(i);
    if (auto* basic = block->as<BasicBlockImpl>()) {
      x = basic->Run(x, capture_, block_name);
    } else {
      x = block->as<BottleneckImpl>()->Run(x, capture_, block_name);
    }
  }
  return x;
}

torch::Tensor ResNetImpl::forward(const torch::Tensor& x) {
  return heads.Forward(spec_, features(x), capture_, sync_group_);
}

void ResNetImpl::set_bn_splits(int64_t num_splits) {
  TORCH_CHECK(num_splits >= 1, "ResNet: bn splits must be >= 1, got ", num_splits);
  for (const auto& module : modules(/*include_self=*/false)) {
    if (auto* bn = module->as<SplitBatchNorm2dImpl>()) {
      bn->set_num_splits(num_splits,
                         channels_last_ ? SplitLayout::kConsecutive : SplitLayout::kInterleaved);
    }
  }
  bn_splits_ = num_splits;
}

void ResNetImpl::set_channels_last(bool channels_last) {
  channels_last_ = channels_last;
  set_bn_splits(bn_splits_);
}

void ResNetImpl::set_sync_group(Communicator* group) {
  if (group != nullptr && group->world_size() == 1) group = nullptr;
  TORCH_CHECK(group == nullptr || bn_splits_ == 1, "ResNet: SyncBatchNorm needs bn splits 1, got ",
              bn_splits_);
  for (const auto& module : modules(/*include_self=*/false)) {
    if (auto* bn = module->as<SplitBatchNorm2dImpl>()) bn->set_sync_group(group);
  }
  sync_group_ = group;
}

absl::StatusOr<ResNet> MakeResNet(const EncoderSpec& spec) {
  try {
    return ResNet(spec);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("building ", spec.backbone.arch,
                                            " failed: ", e.what_without_backtrace()));
  }
}

}  // namespace moco::torch_backend
