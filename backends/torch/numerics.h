// The torch backend's arithmetic and layout choices (BackendConfig.precision, channels_last)
// and the two mechanisms behind them:
//
//   AutocastScope scope(numerics, device);   // bf16 autocast for this forward (or nothing)
//   torch::Tensor y = module->forward(ToLayout(x, numerics));
//
// BF16 is LibTorch's autocast, as a PyTorch user writes it: parameters, gradients and
// optimizer state stay fp32 (master weights); convolutions and linear layers run in bfloat16
// on bf16 copies of their inputs and weights; BatchNorm computes its statistics in fp32 from
// bf16 inputs and keeps fp32 running buffers (LibTorch's mixed-type CPU kernel); the encoder's
// output is cast back to fp32 before the L2 normalization, so logits, loss and queue are fp32.
// Autocast's weight-cast cache lives for one scope: weights are cast once per forward pass,
// because the optimizer changes them in place between passes.
//
// FP16 (CUDA only: LibTorch has no CPU fp16 convolutions or GEMMs, and its CPU autocast takes
// bf16 only) is the same under fp16 autocast. fp16's 5 exponent bits flush gradients below
// 2^-24 to zero, so the training methods scale the loss (moco/methods/loss_scaling.h); the
// gradients reach the fp32 master weights' .grad in fp32, where they are unscaled.
#ifndef BACKENDS_TORCH_NUMERICS_H_
#define BACKENDS_TORCH_NUMERICS_H_

#include <torch/torch.h>

namespace moco::torch_backend {

struct Numerics {
  bool bf16 = false;           // BackendConfig.precision BF16
  bool fp16 = false;           // BackendConfig.precision FP16 (CUDA only; TorchBackend::Create)
  bool channels_last = false;  // BackendConfig.channels_last
};

// While alive (and numerics.bf16 or .fp16), ops on `device`'s type run under autocast to that
// type. Nests;
// the outermost scope restores the previous state and empties the weight-cast cache.
class AutocastScope {
 public:
  AutocastScope(const Numerics& numerics, const torch::Device& device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  bool cuda_ = false;
  bool previous_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kBFloat16;
};

// x in the layout the convolutions want: channels-last for 4-d tensors when asked, else x.
torch::Tensor ToLayout(const torch::Tensor& x, const Numerics& numerics);

// Stores every 4-d parameter and buffer of `module` channels-last (values unchanged), so that
// conv weights need no reorder per forward. Gradients follow the parameter's layout.
void ParametersToChannelsLast(torch::nn::Module& module);

}  // namespace moco::torch_backend

#endif  // BACKENDS_TORCH_NUMERICS_H_
