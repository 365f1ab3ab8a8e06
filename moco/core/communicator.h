// The one communicator of data-parallel training (DESIGN.md item 6): collectives over the ranks
// of a process group, on backend tensors, so every backend runs data-parallel through the same
// process group. The MoCo step knows the world only through rank() and world_size().
//
//   std::unique_ptr<Communicator> comm = MakeLocalCommunicator();      // one process
//   ASSIGN_OR_RETURN(auto comm, distributed::CreateGlooCommunicator(env, options));  // c10d
//   RETURN_IF_ERROR(comm->AllReduceAverage(*grads));                   // in place
//   ASSIGN_OR_RETURN(TensorPtr all_keys, comm->AllGather(keys));      // (W * N, dim)
//
// Contract: every rank calls the same collectives in the same order with tensors of the same
// shape (float32). In-place operations write into the tensor's own memory (a backend tensor
// shares it with whatever made it). A lost or stuck peer returns an error (DeadlineExceeded or
// Unavailable naming the rank where known) after the group's timeout, never a hang.
#ifndef MOCO_CORE_COMMUNICATOR_H_
#define MOCO_CORE_COMMUNICATOR_H_

#include <algorithm>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "moco/core/tensor.h"

namespace moco {

// A collective started by Communicator::StartAllReduceSum, still running.
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  // Blocks until the collective is done; its result is in the tensor once this returns OK.
  // Call once. Errors as the blocking collective's.
  virtual absl::Status Wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;

  // Element-wise sum (or mean) over ranks, in place.
  virtual absl::Status AllReduceSum(Tensor& tensor) = 0;
  virtual absl::Status AllReduceAverage(Tensor& tensor) = 0;
  // Starts AllReduceSum(tensor) and returns without waiting for it (overlap with compute).
  // `tensor` must stay alive and untouched until Wait() returns. Every rank starts the same
  // collectives in the same order. This default runs the collective at once.
  virtual absl::StatusOr<std::unique_ptr<PendingCollective>> StartAllReduceSum(Tensor& tensor);

  // Every rank's `tensor` concatenated along dim 0 in rank order, as a new tensor of the same
  // backend (world 1: `tensor` itself).
  virtual absl::StatusOr<TensorPtr> AllGather(const TensorPtr& tensor) = 0;
  // Every rank's `tensor` becomes `root`'s, in place.
  virtual absl::Status Broadcast(Tensor& tensor, int root) = 0;
  virtual absl::Status Barrier() = 0;

  // Host values (scalars for logging, hashes at rendezvous): sum in place; gather in rank order.
  virtual absl::Status AllReduceSumHost(absl::Span<float> values) = 0;
  virtual absl::StatusOr<std::vector<int64_t>> AllGatherHost(int64_t value) = 0;
  // Every rank's `values` (the same length on every rank) concatenated in rank order.
  virtual absl::StatusOr<std::vector<float>> AllGatherHostFloats(absl::Span<const float> values);

  // Seconds this process has spent blocked in collectives so far (waiting for peers and for
  // the transfer): the communication share of a step is the growth of this over the step's
  // wall time. 0 for a communicator that does not measure it.
  virtual double blocked_seconds() const { return 0; }
};

// A collective that was already complete when it was started.
class CompletedCollective final : public PendingCollective {
 public:
  explicit CompletedCollective(absl::Status status) : status_(std::move(status)) {}
  absl::Status Wait() override { return status_; }

 private:
  absl::Status status_;
};

inline absl::StatusOr<std::unique_ptr<PendingCollective>> Communicator::StartAllReduceSum(
    Tensor& tensor) {
  return std::unique_ptr<PendingCollective>(new CompletedCollective(AllReduceSum(tensor)));
}

inline absl::StatusOr<std::vector<float>> Communicator::AllGatherHostFloats(
    absl::Span<const float> values) {
  if (world_size() == 1) return std::vector<float>(values.begin(), values.end());
  // Through the host sum: each rank writes its values into its own slot of a zeroed buffer
  // (exact, since every other rank adds zeros there).
  const size_t n = values.size();
  std::vector<float> all(n * static_cast<size_t>(world_size()), 0.0f);
  std::copy(values.begin(), values.end(), all.begin() + static_cast<size_t>(rank()) * n);
  absl::Status status = AllReduceSumHost(absl::MakeSpan(all));
  if (!status.ok()) return status;
  return all;
}

// World 1: every collective is the identity.
std::unique_ptr<Communicator> MakeLocalCommunicator();

}  // namespace moco

#endif  // MOCO_CORE_COMMUNICATOR_H_
