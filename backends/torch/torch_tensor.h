// The torch backend's moco::Tensor, conversions to and from host arrays, and the c10::Error ->
// absl::Status boundary every public torch-backend call goes through.
#ifndef BACKENDS_TORCH_TORCH_TENSOR_H_
#define BACKENDS_TORCH_TORCH_TENSOR_H_

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "moco/core/host_array.h"
#include "moco/core/tensor.h"

namespace moco::torch_backend {

inline const std::string& BackendName() {
  static const auto* const kName = new std::string("torch");
  return *kName;
}

class TorchTensor final : public Tensor {
 public:
  explicit TorchTensor(torch::Tensor t) : tensor_(std::move(t)) {}
  std::vector<int64_t> shape() const override { return tensor_.sizes().vec(); }
  const std::string& backend_name() const override { return BackendName(); }
  absl::StatusOr<HostArray> ToHost() const override;
  const torch::Tensor& tensor() const { return tensor_; }

 private:
  torch::Tensor tensor_;
};

// The torch::Tensor inside `t`, or InvalidArgument when `t` belongs to another backend.
absl::StatusOr<torch::Tensor> Unwrap(const Tensor& t);
TensorPtr Wrap(torch::Tensor t);

// Copies (to host, float32, contiguous) into a HostArray.
HostArray ToHostArray(const torch::Tensor& t);
// A float32 tensor on `device` holding a copy of `a`.
torch::Tensor FromHostArray(const HostArray& a, const torch::Device& device);

// Runs `fn`, turning a c10::Error (LibTorch's exception) into an Internal status naming `what`.
template <typename Fn>
auto GuardTorch(const char* what, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const c10::Error& e) {
    return absl::InternalError(std::string(what) + ": LibTorch error: " +
                               e.what_without_backtrace());
  } catch (const std::exception& e) {
    return absl::InternalError(std::string(what) + ": " + e.what());
  }
}

}  // namespace moco::torch_backend

#endif  // BACKENDS_TORCH_TORCH_TENSOR_H_
