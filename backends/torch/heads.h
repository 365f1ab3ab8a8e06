// MoCo's projector and predictor heads as LibTorch modules, shared by the ResNet and ViT
// encoders (moco/core/model_spec.h HeadSpec: structure and names).
#ifndef BACKENDS_TORCH_HEADS_H_
#define BACKENDS_TORCH_HEADS_H_

#include <torch/torch.h>

#include "backends/torch/layer_capture.h"
#include "moco/core/communicator.h"
#include "moco/core/model_spec.h"

namespace moco::torch_backend {

// v3 (head.batch_norm): Sequential(Linear(no bias), BatchNorm1d, ReLU, ..., Linear(no bias)
// [, BatchNorm1d(affine=False)]), moco-v3's _build_mlp. Linear layers draw torch's default
// initialization from the global generator in layer order.
torch::nn::Sequential MakeV3Head(const HeadSpec& head);

// A v3 head's forward, adding each layer's output to `capture` (nullable) under
// HeadSpec::OutputName; its BatchNorms synchronized over `sync` (nullable, world > 1) in
// training mode.
torch::Tensor RunV3Head(torch::nn::Sequential& seq, const HeadSpec& head, torch::Tensor h,
                        LayerCapture* capture, Communicator* sync);

// v1/v2 heads (no BatchNorm): one Linear, or Sequential(Linear, ReLU, Linear, ...), with
// capture as RunV3Head.
torch::Tensor RunLinearHead(torch::nn::Linear& linear, torch::nn::Sequential& mlp,
                            const HeadSpec& head, torch::Tensor h, LayerCapture* capture);

}  // namespace moco::torch_backend

#endif  // BACKENDS_TORCH_HEADS_H_
