// InfoNCE with explicit negatives (MoCo eq. 1):
//   logits = [q.k+, q.negatives^T] / T  (positive logit first), loss = mean cross-entropy to
//   class 0.
// The loss knows nothing of where the negatives come from: the v1/v2 step passes its queue's
// keys; a method with in-batch negatives passes its own tensor.
#ifndef MOCO_CORE_CONTRASTIVE_LOSS_H_
#define MOCO_CORE_CONTRASTIVE_LOSS_H_

#include "absl/status/statusor.h"
#include "moco/core/tensor.h"

namespace moco {

struct ContrastiveLossResult {
  float loss = 0;        // mean over the batch
  float top1 = 0;        // fraction of rows whose positive logit is the largest
  TensorPtr logits;      // (N, 1 + K), already divided by T
  TensorPtr grad_q;      // d(loss)/d(q), (N, dim); k and the negatives get no gradient
};

class ContrastiveLoss {
 public:
  virtual ~ContrastiveLoss() = default;
  // q, k: (N, dim) L2-normalized; negatives (K, dim). temperature > 0.
  virtual absl::StatusOr<ContrastiveLossResult> Compute(const Tensor& q, const Tensor& k,
                                                        const Tensor& negatives,
                                                        float temperature) = 0;
};

}  // namespace moco

#endif  // MOCO_CORE_CONTRASTIVE_LOSS_H_
