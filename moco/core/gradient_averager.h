// Data parallelism: one encoder's gradients averaged over the ranks every step, where the
// backend allows overlapped with the backward (DDP's bucketed all-reduce).
//
//   ASSIGN_OR_RETURN(auto averager, backend.CreateGradientAverager(query, comm, 25 << 20));
//   // each step, after ZeroGrad and the forward passes:
//   RETURN_IF_ERROR(averager->BeforeLastBackward());   // the step's last Backward comes next
//   RETURN_IF_ERROR(query.Backward(*grad_q));
//   RETURN_IF_ERROR(averager->Finish());               // every gradient is the mean over ranks
//
// Contract: every rank makes the same calls in the same order on encoders of the same
// architecture. Backward passes before BeforeLastBackward (a symmetric loss has two) just
// accumulate; the average covers everything accumulated by Finish. Finish reports a failed
// collective (a lost rank) as the Communicator does.
#ifndef MOCO_CORE_GRADIENT_AVERAGER_H_
#define MOCO_CORE_GRADIENT_AVERAGER_H_

#include "absl/status/status.h"

namespace moco {

class GradientAverager {
 public:
  virtual ~GradientAverager() = default;
  virtual absl::Status BeforeLastBackward() = 0;
  virtual absl::Status Finish() = 0;
};

}  // namespace moco

#endif  // MOCO_CORE_GRADIENT_AVERAGER_H_
