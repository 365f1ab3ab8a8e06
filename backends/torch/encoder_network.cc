#include "backends/torch/encoder_network.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "backends/torch/resnet.h"
#include "backends/torch/vit.h"
#include "moco/core/status_macros.h"

namespace moco::torch_backend {
namespace {

class ResNetNetwork final : public EncoderNetwork {
 public:
  explicit ResNetNetwork(ResNet net) : net_(std::move(net)) {}
  std::shared_ptr<torch::nn::Module> module() const override { return net_.ptr(); }
  absl::Status CheckImages(const torch::Tensor&) const override { return absl::OkStatus(); }
  torch::Tensor Forward(const torch::Tensor& images) override { return net_->forward(images); }
  torch::Tensor Features(const torch::Tensor& images) override { return net_->features(images); }
  void SetActivationCapture(LayerCapture* capture) override {
    net_->set_activation_capture(capture);
  }
  void SetSyncGroup(Communicator* group) override { net_->set_sync_group(group); }
  int64_t bn_splits() const override { return net_->bn_splits(); }
  int64_t backbone_dim() const override { return net_->feature_width(); }

 private:
  ResNet net_;
};

class ViTNetwork final : public EncoderNetwork {
 public:
  explicit ViTNetwork(ViTEncoder net) : net_(std::move(net)) {}
  std::shared_ptr<torch::nn::Module> module() const override { return net_.ptr(); }
  absl::Status CheckImages(const torch::Tensor& images) const override {
    return CheckViTImageShape(net_->spec(), images.sizes().vec());
  }
  torch::Tensor Forward(const torch::Tensor& images) override { return net_->forward(images); }
  torch::Tensor Features(const torch::Tensor& images) override { return net_->features(images); }
  void SetActivationCapture(LayerCapture* capture) override {
    net_->set_activation_capture(capture);
  }
  void SetSyncGroup(Communicator* group) override { net_->set_sync_group(group); }
  int64_t bn_splits() const override { return 1; }
  int64_t backbone_dim() const override { return net_->spec().embed_dim; }

 private:
  ViTEncoder net_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<EncoderNetwork>> MakeEncoderNetwork(const EncoderSpec& spec,
                                                                   int64_t bn_splits,
                                                                   bool channels_last) {
  if (!spec.backbone.is_vit()) {
    ASSIGN_OR_RETURN(ResNet net, MakeResNet(spec));
    net->set_bn_splits(bn_splits);
    net->set_channels_last(channels_last);
    return std::unique_ptr<EncoderNetwork>(new ResNetNetwork(std::move(net)));
  }
  try {
    return std::unique_ptr<EncoderNetwork>(new ViTNetwork(ViTEncoder(spec)));
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("building ", spec.backbone.arch,
                                            " failed: ", e.what_without_backtrace()));
  }
}

}  // namespace moco::torch_backend
