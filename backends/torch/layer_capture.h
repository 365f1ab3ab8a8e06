// LayerCapture: the torch networks' side of moco::ActivationCapture (moco/core/activation_capture.h):
// detached host copies of layer outputs in execution order, rows in the caller's sample order.
#ifndef BACKENDS_TORCH_LAYER_CAPTURE_H_
#define BACKENDS_TORCH_LAYER_CAPTURE_H_

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace moco::torch_backend {

struct LayerCapture {
  std::vector<std::pair<std::string, torch::Tensor>> layers;
  // > 1 while rows are in SplitLayout::kInterleaved order for that many groups (inside
  // ResNetImpl::features in training mode); Add() restores the caller's order.
  int64_t interleaved_groups = 1;
  void Add(std::string name, const torch::Tensor& t);
};

}  // namespace moco::torch_backend

#endif  // BACKENDS_TORCH_LAYER_CAPTURE_H_
