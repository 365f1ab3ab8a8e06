#include "backends/eigen/eigen_info_nce_loss.h"

#include "absl/strings/str_cat.h"
#include "backends/eigen/eigen_tensor.h"
#include "backends/eigen/in_batch_contrastive.h"
#include "backends/eigen/info_nce.h"
#include "moco/core/status_macros.h"

namespace moco {
namespace eigen_backend {
namespace {

Blob<float> ToBlob(const HostArray& a) {
  Blob<float> b;
  b.shape = a.shape();
  b.data = a.data();
  return b;
}

}  // namespace

absl::StatusOr<ContrastiveLossResult> EigenInfoNceLoss::Compute(const Tensor& q, const Tensor& k,
                                                                const Tensor& negatives,
                                                                float temperature) {
  ASSIGN_OR_RETURN(const EigenTensor* qt, AsEigenTensor(q, "InfoNCE q"));
  ASSIGN_OR_RETURN(const EigenTensor* kt, AsEigenTensor(k, "InfoNCE k"));
  ASSIGN_OR_RETURN(const EigenTensor* queue_t, AsEigenTensor(negatives, "InfoNCE negatives"));
  const auto& qs = qt->array().shape();
  const auto& ks = kt->array().shape();
  const auto& queue_s = queue_t->array().shape();
  if (qs.size() != 2 || qs != ks || queue_s.size() != 2 || queue_s[1] != qs[1] || qs[0] < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "InfoNCE: q ", ShapeString(qs), " and k ", ShapeString(ks),
        " must both be (N, dim) and the negatives (K, dim); negatives are ", ShapeString(queue_s)));
  }
  if (!(temperature > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("InfoNCE: temperature (", temperature, ") must be > 0"));
  }
  InfoNceResult<float> r = InfoNceForwardBackward(ToBlob(qt->array()), ToBlob(kt->array()),
                                                  ToBlob(queue_t->array()), temperature);
  ContrastiveLossResult out;
  out.loss = static_cast<float>(r.loss);
  out.top1 = static_cast<float>(r.top1);
  out.logits = MakeEigenTensor(HostArray(r.logits.shape, std::move(r.logits.data)));
  out.grad_q = MakeEigenTensor(HostArray(r.grad_q.shape, std::move(r.grad_q.data)));
  return out;
}

absl::StatusOr<ContrastiveLossResult> EigenInfoNceLoss::ComputeInBatch(const Tensor& q,
                                                                       const Tensor& keys,
                                                                       int64_t positive_offset,
                                                                       float temperature,
                                                                       float loss_scale) {
  ASSIGN_OR_RETURN(const EigenTensor* qt, AsEigenTensor(q, "in-batch contrastive q"));
  ASSIGN_OR_RETURN(const EigenTensor* kt, AsEigenTensor(keys, "in-batch contrastive keys"));
  const auto& qs = qt->array().shape();
  const auto& ks = kt->array().shape();
  if (qs.size() != 2 || ks.size() != 2 || ks[1] != qs[1] || qs[0] < 1 || positive_offset < 0 ||
      positive_offset + qs[0] > ks[0]) {
    return absl::InvalidArgumentError(absl::StrCat(
        "in-batch contrastive loss: q ", ShapeString(qs), " must be (N, dim) and keys ",
        ShapeString(ks), " (M, dim) with 0 <= positive_offset (", positive_offset, ") <= M - N"));
  }
  if (!(temperature > 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "in-batch contrastive loss: temperature (", temperature, ") must be > 0"));
  }
  InfoNceResult<float> r = InBatchContrastiveForwardBackward(
      ToBlob(qt->array()), ToBlob(kt->array()), positive_offset, temperature, loss_scale);
  ContrastiveLossResult out;
  out.loss = static_cast<float>(r.loss);
  out.top1 = static_cast<float>(r.top1);
  out.logits = MakeEigenTensor(HostArray(r.logits.shape, std::move(r.logits.data)));
  out.grad_q = MakeEigenTensor(HostArray(r.grad_q.shape, std::move(r.grad_q.data)));
  return out;
}

}  // namespace eigen_backend
}  // namespace moco
