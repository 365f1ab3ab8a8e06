// EigenInfoNceLoss: the ContrastiveLoss interface on InfoNceForwardBackward (info_nce.h).
//
//   EigenInfoNceLoss loss;
//   ASSIGN_OR_RETURN(ContrastiveLossResult r, loss.Compute(*q, *k, queue->keys(), /*temperature=*/0.2f));
#ifndef BACKENDS_EIGEN_EIGEN_INFO_NCE_LOSS_H_
#define BACKENDS_EIGEN_EIGEN_INFO_NCE_LOSS_H_

#include "absl/status/statusor.h"
#include "moco/core/contrastive_loss.h"

namespace moco {
namespace eigen_backend {

class EigenInfoNceLoss final : public ContrastiveLoss {
 public:
  // InvalidArgument for tensors of another backend, mismatched shapes or temperature <= 0.
  absl::StatusOr<ContrastiveLossResult> Compute(const Tensor& q, const Tensor& k,
                                                const Tensor& negatives,
                                                float temperature) override;
  absl::StatusOr<ContrastiveLossResult> ComputeInBatch(const Tensor& q, const Tensor& keys,
                                                       int64_t positive_offset,
                                                       float temperature,
                                                       float loss_scale) override;
};

}  // namespace eigen_backend
}  // namespace moco

#endif  // BACKENDS_EIGEN_EIGEN_INFO_NCE_LOSS_H_
