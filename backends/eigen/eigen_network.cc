#include "backends/eigen/eigen_network.h"

#include "backends/eigen/resnet.h"
#include "backends/eigen/vit.h"
#include "moco/core/status_macros.h"

namespace moco {
namespace eigen_backend {
namespace {

// Net is ResNet<float> or ViT<float>, Workspace its workspace type: both have the same
// interface, so one adapter serves them.
template <typename Net, typename Workspace>
class EigenNetworkOf final : public EigenNetwork {
 public:
  explicit EigenNetworkOf(std::unique_ptr<Net> net) : net_(std::move(net)) {}

  const Blob<float>& Forward(const Blob<float>& images, const ForwardOptions& options,
                             bool record) override {
    Workspace* ws = record ? &recorded_ : &other_;
    const Blob<float>& out = net_->Forward(images, options, ws);
    if (!record) ws->recorded = false;
    return out;
  }
  const Blob<float>& Features(const Blob<float>& images) override {
    return net_->Features(images, {/*train_bn=*/false}, &other_);
  }
  bool recorded() const override { return recorded_.recorded; }
  const std::vector<int64_t>& recorded_output_shape() const override {
    return recorded_.output.shape;
  }
  void Backward(const Blob<float>& grad_output) override { net_->Backward(grad_output, &recorded_); }
  LayerOutputList LayerOutputs(bool recorded_workspace) const override {
    return net_->LayerOutputs(recorded_workspace ? recorded_ : other_);
  }
  void ZeroGrad() override { net_->ZeroGrad(); }
  std::vector<StateRef<float>> States() override { return net_->States(); }
  std::vector<StateRef<float>> Parameters() override { return net_->Parameters(); }
  const EncoderSpec& spec() const override { return net_->spec(); }
  int64_t backbone_dim() const override { return net_->backbone_dim(); }
  int64_t feature_dim() const override { return net_->feature_dim(); }

 private:
  std::unique_ptr<Net> net_;
  Workspace recorded_;  // the recorded forward
  Workspace other_;     // unrecorded forwards and features
};

template <typename Net, typename Workspace>
absl::StatusOr<std::unique_ptr<EigenNetwork>> Make(const EncoderSpec& spec, uint64_t seed) {
  ASSIGN_OR_RETURN(std::unique_ptr<Net> net, Net::Create(spec, seed));
  return std::unique_ptr<EigenNetwork>(new EigenNetworkOf<Net, Workspace>(std::move(net)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<EigenNetwork>> MakeEigenNetwork(const EncoderSpec& spec,
                                                               uint64_t seed) {
  if (spec.backbone.is_vit()) return Make<ViT<float>, ViTWorkspace<float>>(spec, seed);
  return Make<ResNet<float>, ResNetWorkspace<float>>(spec, seed);
}

}  // namespace eigen_backend
}  // namespace moco
