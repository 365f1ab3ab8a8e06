// InfoNCE with explicit negatives (MoCo eq. 1):
//   logits = [q.k+, q.negatives^T] / T  (positive logit first), loss = mean cross-entropy to
//   class 0.
// The loss knows nothing of where the negatives come from: the v1/v2 step passes its queue's
// keys. MoCo v3's in-batch form (ComputeInBatch) scores each query against every key of the
// batch instead.
#ifndef MOCO_CORE_CONTRASTIVE_LOSS_H_
#define MOCO_CORE_CONTRASTIVE_LOSS_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "moco/core/tensor.h"

namespace moco {

struct ContrastiveLossResult {
  float loss = 0;        // mean over the batch
  float top1 = 0;        // fraction of rows whose positive logit is the largest
  TensorPtr logits;      // (N, 1 + K) (in-batch: (N, M)), already divided by T
  TensorPtr grad_q;      // d(loss)/d(q), (N, dim); k and the negatives get no gradient
};

class ContrastiveLoss {
 public:
  virtual ~ContrastiveLoss() = default;
  // q, k: (N, dim) L2-normalized; negatives (K, dim). temperature > 0.
  virtual absl::StatusOr<ContrastiveLossResult> Compute(const Tensor& q, const Tensor& k,
                                                        const Tensor& negatives,
                                                        float temperature) = 0;

  // MoCo v3's ctr(q, k): logits = q keys^T / T (N, M), the positive of row i at column
  // positive_offset + i (keys are the whole global batch's, this rank's at positive_offset),
  // loss = loss_scale * mean cross-entropy (v3: loss_scale = 2T), grad_q its gradient,
  // top1 = share of rows whose argmax is the positive. q (N, dim), keys (M, dim),
  // 0 <= positive_offset <= M - N.
  virtual absl::StatusOr<ContrastiveLossResult> ComputeInBatch(const Tensor& q,
                                                               const Tensor& keys,
                                                               int64_t positive_offset,
                                                               float temperature,
                                                               float loss_scale) = 0;
};

}  // namespace moco

#endif  // MOCO_CORE_CONTRASTIVE_LOSS_H_
