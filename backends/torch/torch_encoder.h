// moco::Encoder on a LibTorch network with autograd: a ResNet (backends/torch/resnet.h) or a
// ViT (backends/torch/vit.h), behind backends/torch/encoder_network.h.
#ifndef BACKENDS_TORCH_TORCH_ENCODER_H_
#define BACKENDS_TORCH_TORCH_ENCODER_H_

#include <torch/torch.h>

#include <memory>

#include "absl/status/statusor.h"
#include "backends/torch/numerics.h"
#include "backends/torch/encoder_network.h"
#include "moco/config/config.pb.h"
#include "moco/core/activation_capture.h"
#include "moco/core/encoder.h"

namespace moco::torch_backend {

class TorchEncoder final : public Encoder, public moco::ActivationCapture {
 public:
  // Builds the network of `model` on `device`, initialized from torch's global RNG seeded
  // with `seed`; forwards run with `numerics` (backends/torch/numerics.h: bf16 autocast,
  // channels-last), outputs are fp32 either way.
  static absl::StatusOr<std::unique_ptr<TorchEncoder>> Create(const ModelConfig& model,
                                                              uint64_t seed,
                                                              const EncoderOptions& options,
                                                              const torch::Device& device,
                                                              const Numerics& numerics = {});

  absl::StatusOr<TensorPtr> Forward(const Tensor& images, bool train_bn,
                                    bool record_for_backward) override;
  absl::Status Backward(const Tensor& grad_output) override;
  void ZeroGrad() override;
  absl::StatusOr<bool> UnscaleGradients(float factor) override;
  absl::StatusOr<TensorPtr> BackboneFeatures(const Tensor& images) override;
  absl::Status MomentumUpdateFrom(const Encoder& source, float momentum) override;
  absl::StatusOr<NamedArrays> ExportState() const override;
  absl::StatusOr<NamedArrays> ExportGradients() const override;
  absl::Status ImportState(const NamedArrays& state) override;
  absl::Status SetBatchNormGroup(Communicator* group) override;
  moco::ActivationCapture* activation_capture() override { return this; }
  // moco::ActivationCapture.
  void Enable(bool enabled) override;
  const OrderedArrays& Activations() const override { return captured_; }
  int64_t feature_dim() const override { return feature_dim_; }
  int64_t backbone_dim() const override { return backbone_dim_; }

  // The module owning every parameter and buffer (optimizers, rank averaging).
  std::shared_ptr<torch::nn::Module> module() const { return net_->module(); }

 private:
  TorchEncoder(std::unique_ptr<EncoderNetwork> net, int64_t feature_dim, int64_t backbone_dim,
               torch::Device device, Numerics numerics)
      : net_(std::move(net)),
        feature_dim_(feature_dim),
        backbone_dim_(backbone_dim),
        device_(device),
        numerics_(numerics) {}

  // Forward() without the activation-capture bookkeeping.
  absl::StatusOr<TensorPtr> ForwardUncaptured(const torch::Tensor& x, bool train_bn,
                                              bool record_for_backward);

  std::unique_ptr<EncoderNetwork> net_;
  torch::Tensor recorded_output_;  // the last recorded Forward's output, with its graph
  int64_t feature_dim_;
  int64_t backbone_dim_;
  torch::Device device_;
  Numerics numerics_;
  bool capture_activations_ = false;
  OrderedArrays captured_;
};

}  // namespace moco::torch_backend

#endif  // BACKENDS_TORCH_TORCH_ENCODER_H_
