// InfoNCE with a queue of negatives (MoCo eq. 1):
//   logits = [q.k+, q.queue^T] / T  (positive logit first), loss = mean cross-entropy to class 0.
#ifndef MOCO_CORE_CONTRASTIVE_LOSS_H_
#define MOCO_CORE_CONTRASTIVE_LOSS_H_

#include "absl/status/statusor.h"
#include "moco/core/key_queue.h"
#include "moco/core/tensor.h"

namespace moco {

struct ContrastiveLossResult {
  float loss = 0;        // mean over the batch
  float top1 = 0;        // fraction of rows whose positive logit is the largest
  TensorPtr logits;      // (N, 1 + K), already divided by T
  TensorPtr grad_q;      // d(loss)/d(q), (N, dim); k and the queue get no gradient
};

class ContrastiveLoss {
 public:
  virtual ~ContrastiveLoss() = default;
  // q, k: (N, dim) L2-normalized; queue keys (K, dim). temperature > 0.
  virtual absl::StatusOr<ContrastiveLossResult> Compute(const Tensor& q, const Tensor& k,
                                                        const KeyQueue& queue,
                                                        float temperature) = 0;
};

}  // namespace moco

#endif  // MOCO_CORE_CONTRASTIVE_LOSS_H_
