#include "backends/torch/numerics.h"

#include <ATen/autocast_mode.h>

namespace moco::torch_backend {

AutocastScope::AutocastScope(const Numerics& numerics, const torch::Device& device)
    : active_(numerics.bf16 || numerics.fp16), cuda_(device.is_cuda()) {
  if (!active_) return;
  const at::ScalarType dtype = numerics.fp16 ? at::kHalf : at::kBFloat16;
  if (cuda_) {
    previous_enabled_ = at::autocast::is_enabled();
    previous_dtype_ = at::autocast::get_autocast_gpu_dtype();
    at::autocast::set_enabled(true);
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    previous_enabled_ = at::autocast::is_cpu_enabled();
    previous_dtype_ = at::autocast::get_autocast_cpu_dtype();
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  if (cuda_) {
    at::autocast::set_enabled(previous_enabled_);
    at::autocast::set_autocast_gpu_dtype(previous_dtype_);
  } else {
    at::autocast::set_cpu_enabled(previous_enabled_);
    at::autocast::set_autocast_cpu_dtype(previous_dtype_);
  }
}

torch::Tensor ToLayout(const torch::Tensor& x, const Numerics& numerics) {
  if (!numerics.channels_last || x.dim() != 4) return x;
  return x.contiguous(at::MemoryFormat::ChannelsLast);
}

void ParametersToChannelsLast(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (torch::Tensor& p : module.parameters()) {
    if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
  }
}

}  // namespace moco::torch_backend
