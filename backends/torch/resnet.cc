#include "backends/torch/resnet.h"

#include <cmath>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace moco::torch_backend {
namespace {

namespace nn = torch::nn;

nn::Conv2d Conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(false));
}

// torchvision's downsample: Sequential(conv1x1(in, out, stride), BN(out)) -> names "0", "1".
nn::Sequential Downsample(int64_t in, int64_t out, int64_t stride) {
  return nn::Sequential(Conv(in, out, 1, stride, 0), SplitBatchNorm2d(out));
}

struct ArchSpec {
  bool bottleneck;
  int64_t blocks[4];
};

bool LookupArch(const std::string& arch, ArchSpec* spec) {
  if (arch == "resnet18") {
    *spec = {false, {2, 2, 2, 2}};
  } else if (arch == "resnet34") {
    *spec = {false, {3, 4, 6, 3}};
  } else if (arch == "resnet50") {
    *spec = {true, {3, 4, 6, 3}};
  } else {
    return false;
  }
  return true;
}

// One stage (torchvision's _make_layer): the first block carries the stride.
template <typename Block>
nn::Sequential MakeLayer(int64_t* in_planes, int64_t planes, int64_t blocks, int64_t stride) {
  nn::Sequential layer;
  layer->push_back(Block(*in_planes, planes, stride));
  *in_planes = planes * Block::ContainedType::kExpansion;
  for (int64_t i = 1; i < blocks; ++i) layer->push_back(Block(*in_planes, planes, 1));
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

void LayerCapture::Add(std::string name, const torch::Tensor& t) {
  torch::Tensor copy = t.detach();
  const int64_t n = interleaved_groups;
  if (n > 1) {
    // Row i * n + g holds sample g * M + i (see ResNetImpl::features); undo that.
    std::vector<int64_t> grouped = copy.sizes().vec();
    grouped[0] /= n;
    grouped.insert(grouped.begin() + 1, n);
    copy = copy.reshape(grouped).transpose(0, 1).reshape(t.sizes());
  }
  layers.emplace_back(std::move(name), copy.clone().cpu());
}

int64_t ScaledWidth(int64_t base, float width_multiplier) {
  return std::max<int64_t>(1, std::llround(static_cast<double>(base) * width_multiplier));
}

// ---- BasicBlock ------------------------------------------------------------------------------

BasicBlockImpl::BasicBlockImpl(int64_t in_planes, int64_t planes, int64_t stride)
    : in_planes_(in_planes), planes_(planes), stride_(stride) {
  reset();
}

void BasicBlockImpl::reset() {
  conv1 = register_module("conv1", Conv(in_planes_, planes_, 3, stride_, 1));
  bn1 = register_module("bn1", SplitBatchNorm2d(planes_));
  conv2 = register_module("conv2", Conv(planes_, planes_, 3, 1, 1));
  bn2 = register_module("bn2", SplitBatchNorm2d(planes_));
  downsample = nullptr;
  if (stride_ != 1 || in_planes_ != planes_ * kExpansion) {
    downsample =
        register_module("downsample", Downsample(in_planes_, planes_ * kExpansion, stride_));
  }
}

torch::Tensor BasicBlockImpl::Run(const torch::Tensor& x, LayerCapture* capture,
                                  const std::string& name) {
  const torch::Tensor out = ConvBnRelu(conv1, bn1, x, capture, name, 1);
  return FinishBlock(ConvBn(conv2, bn2, out, capture, name, 2), x, downsample, capture, name);
}

// ---- Bottleneck ------------------------------------------------------------------------------

BottleneckImpl::BottleneckImpl(int64_t in_planes, int64_t planes, int64_t stride)
    : in_planes_(in_planes), planes_(planes), stride_(stride) {
  reset();
}

void BottleneckImpl::reset() {
  conv1 = register_module("conv1", Conv(in_planes_, planes_, 1, 1, 0));
  bn1 = register_module("bn1", SplitBatchNorm2d(planes_));
  conv2 = register_module("conv2", Conv(planes_, planes_, 3, stride_, 1));
  bn2 = register_module("bn2", SplitBatchNorm2d(planes_));
  conv3 = register_module("conv3", Conv(planes_, planes_ * kExpansion, 1, 1, 0));
  bn3 = register_module("bn3", SplitBatchNorm2d(planes_ * kExpansion));
  downsample = nullptr;
  if (stride_ != 1 || in_planes_ != planes_ * kExpansion) {
    downsample =
        register_module("downsample", Downsample(in_planes_, planes_ * kExpansion, stride_));
  }
}

torch::Tensor BottleneckImpl::Run(const torch::Tensor& x, LayerCapture* capture,
                                  const std::string& name) {
  torch::Tensor out = ConvBnRelu(conv1, bn1, x, capture, name, 1);
  out = ConvBnRelu(conv2, bn2, out, capture, name, 2);
  return FinishBlock(ConvBn(conv3, bn3, out, capture, name, 3), x, downsample, capture, name);
}

// ---- ResNet ----------------------------------------------------------------------------------

ResNetImpl::ResNetImpl(const ResNetOptions& options) : options_(options) { reset(); }

void ResNetImpl::reset() {
  ArchSpec spec;
  TORCH_CHECK(LookupArch(options_.arch, &spec), "ResNet: unknown arch ", options_.arch);
  TORCH_CHECK(
      options_.width_multiplier > 0 && options_.in_channels >= 1 && options_.feature_dim >= 1,
      "ResNet: invalid options; build it with MakeResNet()");
  const float w = options_.width_multiplier;
  int64_t in_planes = ScaledWidth(64, w);
  if (options_.cifar_stem) {
    conv1 = register_module("conv1", Conv(options_.in_channels, in_planes, 3, 1, 1));
  } else {
    conv1 = register_module("conv1", Conv(options_.in_channels, in_planes, 7, 2, 3));
  }
  bn1 = register_module("bn1", SplitBatchNorm2d(in_planes));
  maxpool = nullptr;
  if (!options_.cifar_stem) {
    maxpool =
        register_module("maxpool", nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2).padding(1)));
  }
  nn::Sequential* layers[4] = {&layer1, &layer2, &layer3, &layer4};
  for (int i = 0; i < 4; ++i) {
    const int64_t planes = ScaledWidth(int64_t{64} << i, w);
    const int64_t stride = i == 0 ? 1 : 2;
    *layers[i] = register_module(
        absl::StrCat("layer", i + 1),
        spec.bottleneck ? MakeLayer<Bottleneck>(&in_planes, planes, spec.blocks[i], stride)
                        : MakeLayer<BasicBlock>(&in_planes, planes, spec.blocks[i], stride));
  }
  feature_width_ = in_planes;
  avgpool = register_module("avgpool", nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions(1)));
  fc_linear = nullptr;
  fc_mlp = nullptr;
  if (options_.mlp_head) {
    fc_mlp =
        register_module("fc", nn::Sequential(nn::Linear(feature_width_, feature_width_), nn::ReLU(),
                                             nn::Linear(feature_width_, options_.feature_dim)));
  } else {
    fc_linear = register_module("fc", nn::Linear(feature_width_, options_.feature_dim));
  }
  // torchvision's initialization; Linear layers keep torch's default.
  torch::NoGradGuard no_grad;
  for (const auto& module : modules(/*include_self=*/false)) {
    if (auto* conv = module->as<nn::Conv2d>()) {
      nn::init::kaiming_normal_(conv->weight, /*a=*/0, torch::kFanOut, torch::kReLU);
    }
  }
}

torch::Tensor ResNetImpl::features(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == options_.in_channels, "ResNet: expected input (N, ",
              options_.in_channels, ", H, W), got ", x.sizes());
  const int64_t n = bn_splits_;
  const bool regroup = is_training() && n > 1;
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
  torch::Tensor f = features(x);
  if (capture_ == nullptr) return options_.mlp_head ? fc_mlp->forward(f) : fc_linear->forward(f);
  if (!options_.mlp_head) {
    torch::Tensor y = fc_linear->forward(f);
    capture_->Add("fc", y);
    return y;
  }
  torch::Tensor h = fc_mlp->at<nn::ReLUImpl>(1).forward(fc_mlp->at<nn::LinearImpl>(0).forward(f));
  capture_->Add("fc.1", h);
  torch::Tensor y = fc_mlp->at<nn::LinearImpl>(2).forward(h);
  capture_->Add("fc.2", y);
  return y;
}

void ResNetImpl::set_bn_splits(int64_t num_splits) {
  TORCH_CHECK(num_splits >= 1, "ResNet: bn splits must be >= 1, got ", num_splits);
  for (const auto& module : modules(/*include_self=*/false)) {
    if (auto* bn = module->as<SplitBatchNorm2dImpl>()) {
      bn->set_num_splits(num_splits, SplitLayout::kInterleaved);
    }
  }
  bn_splits_ = num_splits;
}

absl::StatusOr<ResNet> MakeResNet(const ResNetOptions& options) {
  ArchSpec spec;
  if (!LookupArch(options.arch, &spec)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model.arch \"", options.arch, "\" is not one of resnet18, resnet34, resnet50"));
  }
  if (!(options.width_multiplier > 0) || !std::isfinite(options.width_multiplier)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model.width_multiplier (", options.width_multiplier, ") must be a finite number > 0"));
  }
  if (options.in_channels < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("model.in_channels (", options.in_channels, ") must be >= 1"));
  }
  if (options.feature_dim < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("model.feature_dim (", options.feature_dim, ") must be >= 1"));
  }
  try {
    return ResNet(options);
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("building ", options.arch, " failed: ", e.what_without_backtrace()));
  }
}

}  // namespace moco::torch_backend
