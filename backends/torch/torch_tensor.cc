#include "backends/torch/torch_tensor.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace moco::torch_backend {

absl::StatusOr<HostArray> TorchTensor::ToHost() const {
  return GuardTorch("Tensor::ToHost", [&]() -> absl::StatusOr<HostArray> {
    return ToHostArray(tensor_);
  });
}

absl::StatusOr<torch::Tensor> Unwrap(const Tensor& t) {
  const auto* torch_tensor = dynamic_cast<const TorchTensor*>(&t);
  if (torch_tensor == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("the torch backend was given a tensor of backend '", t.backend_name(), "'"));
  }
  return torch_tensor->tensor();
}

TensorPtr Wrap(torch::Tensor t) { return std::make_shared<TorchTensor>(std::move(t)); }

HostArray ToHostArray(const torch::Tensor& t) {
  torch::Tensor host = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  HostArray a(host.sizes().vec());
  if (a.numel() > 0) std::memcpy(a.mutable_data().data(), host.data_ptr<float>(), a.numel() * sizeof(float));
  return a;
}

torch::Tensor FromHostArray(const HostArray& a, const torch::Device& device) {
  torch::Tensor host = torch::empty(a.shape(), torch::kFloat32);
  if (a.numel() > 0) std::memcpy(host.data_ptr<float>(), a.data().data(), a.numel() * sizeof(float));
  return device.is_cpu() ? host : host.to(device);
}

}  // namespace moco::torch_backend
