// Training-mode BatchNorm over the union of every rank's batch (torch.nn.SyncBatchNorm's
// semantics), for MoCo v3 under data parallelism: each rank passes its own batch; the
// statistics, the running-statistics update and the input gradient are those of one BatchNorm
// over all ranks' samples together. Works for (N, C) and (N, C, H, W) inputs.
//
//   torch::Tensor y = SyncBatchNormTrain(x, bn->weight, bn->bias, bn->running_mean,
//                                        bn->running_var, 0.1, 1e-5, communicator);
//
// Forward: one host all-gather per call of every rank's per-channel mean and squared
// deviations about it, combined by the parallel-variance formula (no cancellation as with a
// sum of squares). Backward (autograd): one all-reduce
// of [sum dy, sum dy * xhat]; the weight and bias gradients stay this rank's share, to be
// averaged with every other gradient. Running statistics move with the global mean and the
// global unbiased variance, so they stay identical on every rank.
//
// Contract: every rank calls it at the same point with the same shape (as every collective).
// weight and bias may be undefined (affine = false). Statistics and arithmetic are fp32; the
// output has x's dtype (bf16 under autocast). A failed collective throws c10::Error naming it
// (the backend's entry points turn it into absl::Status).
#ifndef BACKENDS_TORCH_SYNC_BATCH_NORM_H_
#define BACKENDS_TORCH_SYNC_BATCH_NORM_H_

#include <torch/torch.h>

#include "moco/core/communicator.h"

namespace moco::torch_backend {

torch::Tensor SyncBatchNormTrain(const torch::Tensor& x, const torch::Tensor& weight,
                                 const torch::Tensor& bias, torch::Tensor& running_mean,
                                 torch::Tensor& running_var, double momentum, double eps,
                                 Communicator& group);

}  // namespace moco::torch_backend

#endif  // BACKENDS_TORCH_SYNC_BATCH_NORM_H_
