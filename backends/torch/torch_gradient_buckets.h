// Data parallelism on the torch backend: a TorchEncoder's gradients averaged over the ranks with
// the all-reduce overlapped with the backward, as DDP's Reducer does it (moco/core/
// gradient_averager.h).
//
//   ASSIGN_OR_RETURN(auto averager, BucketedGradientAverager::Create(encoder, comm, 25 << 20));
//   RETURN_IF_ERROR(averager->BeforeLastBackward());
//   RETURN_IF_ERROR(encoder.Backward(grad));   // buckets start all-reducing as they fill
//   RETURN_IF_ERROR(averager->Finish());       // waits, divides by the world, writes p.grad
//
// The trainable parameters are packed, in reverse registration order (the order the backward
// finishes them: heads first, stem last), into flat float32 buckets of about `bucket_bytes`
// (the first one at most 1 MiB, so communication starts early). A hook after each parameter's
// gradient accumulation copies the final gradient into its bucket; a full bucket starts its
// all-reduce at once (Communicator::StartAllReduceSum), in bucket order on every rank. Finish
// fills what the backward did not reach (zeros for parameters without a gradient, which stay
// without one), starts the rest, waits for all, and copies the means back. The values equal
// the flat all-reduce after the backward (Backend::AverageAcrossRanks) for world 2 exactly;
// beyond, a ring all-reduce may add in another order per bucket split.
//
// The hooks stay on the encoder's gradient accumulators for its lifetime and do nothing unless
// armed by BeforeLastBackward, so backward passes before it (and after this averager is gone)
// just accumulate. CPU autograd runs the hooks in the thread that called Backward.
#ifndef BACKENDS_TORCH_TORCH_GRADIENT_BUCKETS_H_
#define BACKENDS_TORCH_TORCH_GRADIENT_BUCKETS_H_

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "backends/torch/torch_encoder.h"
#include "moco/core/communicator.h"
#include "moco/core/gradient_averager.h"

namespace moco::torch_backend {

// Which parameters (indices into a parameter list) share a bucket, in launch order: reverse
// index order, the first bucket capped at min(1 MiB, bucket_bytes), the others at bucket_bytes
// (a parameter larger than the cap gets a bucket of its own). `bytes[i]` is parameter i's size.
std::vector<std::vector<int>> AssignGradientBuckets(const std::vector<int64_t>& bytes,
                                                    int64_t bucket_bytes);

class BucketedGradientAverager final : public GradientAverager {
 public:
  // `encoder` and `communicator` must outlive the averager; bucket_bytes > 0.
  static absl::StatusOr<std::unique_ptr<BucketedGradientAverager>> Create(
      TorchEncoder& encoder, Communicator& communicator, int64_t bucket_bytes);
  ~BucketedGradientAverager() override;

  absl::Status BeforeLastBackward() override;
  absl::Status Finish() override;

  // How many buckets were started during the last armed Backward (before Finish): the
  // overlap actually achieved (tests, benchmarks).
  int buckets_started_in_backward() const;
  int bucket_count() const;

  struct State;  // shared with the hooks

 private:
  explicit BucketedGradientAverager(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

}  // namespace moco::torch_backend

#endif  // BACKENDS_TORCH_TORCH_GRADIENT_BUCKETS_H_
