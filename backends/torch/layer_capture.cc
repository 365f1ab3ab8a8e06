#include "backends/torch/layer_capture.h"

namespace moco::torch_backend {

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

}  // namespace moco::torch_backend
