// EigenKeyQueue: MoCo's FIFO dictionary of K unit keys (K, dim) in host memory.
//
//   ASSIGN_OR_RETURN(auto queue, EigenKeyQueue::Create(/*size=*/4096, /*dim=*/128, seed));
//   RETURN_IF_ERROR(queue->Enqueue(*keys));  // keys (N, 128), K % N == 0
#ifndef BACKENDS_EIGEN_EIGEN_KEY_QUEUE_H_
#define BACKENDS_EIGEN_EIGEN_KEY_QUEUE_H_

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backends/eigen/eigen_tensor.h"
#include "moco/core/key_queue.h"

namespace moco {
namespace eigen_backend {

class EigenKeyQueue final : public KeyQueue {
 public:
  // Rows are standard normal vectors divided by their norm, deterministic in `seed`.
  // InvalidArgument for a non-positive size or dim.
  static absl::StatusOr<std::unique_ptr<EigenKeyQueue>> Create(int64_t size, int64_t dim,
                                                               uint64_t seed);

  const Tensor& keys() const override { return *keys_; }
  int64_t pointer() const override { return pointer_; }
  absl::Status Enqueue(const Tensor& keys) override;
  NamedArrays ExportState() const override;
  absl::Status ImportState(const NamedArrays& state) override;

  const HostArray& array() const { return keys_->array(); }

 private:
  explicit EigenKeyQueue(std::shared_ptr<EigenTensor> keys) : keys_(std::move(keys)) {}

  std::shared_ptr<EigenTensor> keys_;
  int64_t pointer_ = 0;
};

}  // namespace eigen_backend
}  // namespace moco

#endif  // BACKENDS_EIGEN_EIGEN_KEY_QUEUE_H_
