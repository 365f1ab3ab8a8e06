// MoCo's projector and predictor heads as LibTorch modules, shared by the ResNet and ViT
// encoders (moco/core/model_spec.h HeadSpec: structure and names).
#ifndef BACKENDS_TORCH_HEADS_H_
#define BACKENDS_TORCH_HEADS_H_

#include <torch/torch.h>

#include "backends/torch/layer_capture.h"
#include "moco/core/communicator.h"
#include "moco/core/model_spec.h"

namespace moco::torch_backend {

// The projector, registered on its encoder under HeadSpec::name ("fc" on ResNets, "head" on
// ViTs: v1 one Linear, v2 Linear-ReLU-Linear, v3 moco-v3's _build_mlp with BatchNorm1d) and,
// for v3 query encoders, the predictor ("predictor"). Linear layers draw torch's default
// initialization from the global generator, in registration order.
struct EncoderHeads {
  torch::nn::Linear linear{nullptr};  // a v1 projector
  torch::nn::Sequential mlp{nullptr};  // a v2 or v3 projector
  torch::nn::Sequential predictor{nullptr};

  // Builds the heads of `spec` and registers them on `owner`.
  void Register(const EncoderSpec& spec, torch::nn::Module& owner);
  // Head output (N, feature_dim) of the backbone features; each layer's output goes to
  // `capture` (nullable) under HeadSpec::OutputName; v3 BatchNorms are synchronized over
  // `sync` (nullable, world > 1) in training mode.
  torch::Tensor Forward(const EncoderSpec& spec, const torch::Tensor& features,
                        LayerCapture* capture, Communicator* sync);
};

}  // namespace moco::torch_backend

#endif  // BACKENDS_TORCH_HEADS_H_
