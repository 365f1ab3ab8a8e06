// moco::KeyQueue as a (K, dim) torch tensor on the backend's device, plus a host-side pointer.
#ifndef BACKENDS_TORCH_TORCH_KEY_QUEUE_H_
#define BACKENDS_TORCH_TORCH_KEY_QUEUE_H_

#include <torch/torch.h>

#include "backends/torch/torch_tensor.h"
#include "moco/core/key_queue.h"

namespace moco::torch_backend {

class TorchKeyQueue final : public KeyQueue {
 public:
  // `size` random unit vectors (normal samples, row-normalized) from a generator seeded `seed`.
  TorchKeyQueue(int64_t size, int64_t dim, uint64_t seed, const torch::Device& device);

  const Tensor& keys() const override { return keys_; }
  int64_t pointer() const override { return pointer_; }
  absl::Status Enqueue(const Tensor& keys) override;
  NamedArrays ExportState() const override;
  absl::Status ImportState(const NamedArrays& state) override;

 private:
  TorchTensor keys_;
  int64_t pointer_ = 0;
};

}  // namespace moco::torch_backend

#endif  // BACKENDS_TORCH_TORCH_KEY_QUEUE_H_
