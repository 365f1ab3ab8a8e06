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

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "moco/core/tensor.h"

namespace moco {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;

  // Element-wise sum (or mean) over ranks, in place.
  virtual absl::Status AllReduceSum(Tensor& tensor) = 0;
  virtual absl::Status AllReduceAverage(Tensor& tensor) = 0;
  // Every rank's `tensor` concatenated along dim 0 in rank order, as a new tensor of the same
  // backend (world 1: `tensor` itself).
  virtual absl::StatusOr<TensorPtr> AllGather(const TensorPtr& tensor) = 0;
  // Every rank's `tensor` becomes `root`'s, in place.
  virtual absl::Status Broadcast(Tensor& tensor, int root) = 0;
  virtual absl::Status Barrier() = 0;

  // Host values (scalars for logging, hashes at rendezvous): sum in place; gather in rank order.
  virtual absl::Status AllReduceSumHost(absl::Span<float> values) = 0;
  virtual absl::StatusOr<std::vector<int64_t>> AllGatherHost(int64_t value) = 0;
};

// World 1: every collective is the identity.
std::unique_ptr<Communicator> MakeLocalCommunicator();

}  // namespace moco

#endif  // MOCO_CORE_COMMUNICATOR_H_
