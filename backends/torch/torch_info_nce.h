// InfoNCE (moco/core/contrastive_loss.h) with a closed-form gradient w.r.t. q:
//   p = softmax(logits), d(loss)/d(logits) = (p - onehot(0)) / N,
//   d(loss)/dq = (dlogits[:, 0] * k + dlogits[:, 1:] @ negatives) / T.
// No autograd graph is built: k and the negatives are constants, and this is cheaper.
#ifndef BACKENDS_TORCH_TORCH_INFO_NCE_H_
#define BACKENDS_TORCH_TORCH_INFO_NCE_H_

#include "moco/core/contrastive_loss.h"

namespace moco::torch_backend {

class TorchInfoNce final : public ContrastiveLoss {
 public:
  absl::StatusOr<ContrastiveLossResult> Compute(const Tensor& q, const Tensor& k,
                                                const Tensor& negatives,
                                                float temperature) override;
  absl::StatusOr<ContrastiveLossResult> ComputeInBatch(const Tensor& q, const Tensor& keys,
                                                       int64_t positive_offset,
                                                       float temperature,
                                                       float loss_scale) override;
};

}  // namespace moco::torch_backend

#endif  // BACKENDS_TORCH_TORCH_INFO_NCE_H_
