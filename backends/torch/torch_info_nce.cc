#include "backends/torch/torch_info_nce.h"

#include "absl/strings/str_cat.h"
#include "backends/torch/torch_tensor.h"
#include "moco/core/status_macros.h"

namespace moco::torch_backend {

absl::StatusOr<ContrastiveLossResult> TorchInfoNce::Compute(const Tensor& q_in,
                                                            const Tensor& k_in,
                                                            const Tensor& negatives_in,
                                                            float temperature) {
  ASSIGN_OR_RETURN(torch::Tensor q, Unwrap(q_in));
  ASSIGN_OR_RETURN(torch::Tensor k, Unwrap(k_in));
  ASSIGN_OR_RETURN(torch::Tensor negatives, Unwrap(negatives_in));
  if (q.sizes() != k.sizes() || q.dim() != 2 || negatives.size(1) != q.size(1)) {
    return absl::InvalidArgumentError("InfoNCE: q, k must be (N, dim) and the negatives (K, dim)");
  }
  if (!(temperature > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("InfoNCE: temperature (", temperature, ") must be > 0"));
  }
  return GuardTorch("InfoNCE", [&]() -> absl::StatusOr<ContrastiveLossResult> {
    torch::NoGradGuard no_grad;
    const int64_t n = q.size(0);
    torch::Tensor logits = torch::empty({n, 1 + negatives.size(0)}, q.options());
    logits.narrow(1, 0, 1).copy_((q * k).sum(1, /*keepdim=*/true));
    torch::Tensor negative_logits = logits.narrow(1, 1, negatives.size(0));
    torch::mm_out(negative_logits, q, negatives.t());
    logits.mul_(1.0f / temperature);
    torch::Tensor log_p = torch::log_softmax(logits, 1);
    ContrastiveLossResult r;
    r.loss = -log_p.select(1, 0).mean().item<float>();
    r.top1 = (logits.argmax(1) == 0).to(torch::kFloat32).mean().item<float>();
    torch::Tensor dlogits = log_p.exp_();
    dlogits.select(1, 0).sub_(1.0f);
    dlogits.mul_(1.0f / (n * temperature));  // folds the 1/T of d(logits)/dq in
    torch::Tensor grad_q = dlogits.narrow(1, 1, negatives.size(0)).mm(negatives);
    grad_q.add_(dlogits.narrow(1, 0, 1) * k);
    r.logits = Wrap(logits);
    r.grad_q = Wrap(grad_q);
    return r;
  });
}

absl::StatusOr<ContrastiveLossResult> TorchInfoNce::ComputeInBatch(const Tensor& q_in,
                                                                   const Tensor& keys_in,
                                                                   int64_t positive_offset,
                                                                   float temperature,
                                                                   float loss_scale) {
  ASSIGN_OR_RETURN(torch::Tensor q, Unwrap(q_in));
  ASSIGN_OR_RETURN(torch::Tensor keys, Unwrap(keys_in));
  if (q.dim() != 2 || keys.dim() != 2 || keys.size(1) != q.size(1) || q.size(0) < 1 ||
      positive_offset < 0 || positive_offset + q.size(0) > keys.size(0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "in-batch contrastive loss: q must be (N, dim) and keys (M, dim) with 0 <= "
        "positive_offset (", positive_offset, ") <= M - N"));
  }
  if (!(temperature > 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "in-batch contrastive loss: temperature (", temperature, ") must be > 0"));
  }
  return GuardTorch("in-batch contrastive loss", [&]() -> absl::StatusOr<ContrastiveLossResult> {
    torch::NoGradGuard no_grad;
    const int64_t n = q.size(0);
    torch::Tensor logits = q.mm(keys.t()).mul_(1.0f / temperature);
    torch::Tensor labels = torch::arange(positive_offset, positive_offset + n,
                                         torch::TensorOptions().dtype(torch::kLong).device(q.device()));
    torch::Tensor log_p = torch::log_softmax(logits, 1);
    ContrastiveLossResult r;
    r.loss = -log_p.gather(1, labels.unsqueeze(1)).mean().item<float>() * loss_scale;
    r.top1 = (logits.argmax(1) == labels).to(torch::kFloat32).mean().item<float>();
    // d(loss)/d(logits) = (softmax - onehot) / N; the 1/T of d(logits)/dq is folded in.
    torch::Tensor dlogits = log_p.exp_();
    dlogits.scatter_add_(1, labels.unsqueeze(1), torch::full({n, 1}, -1.0f, q.options()));
    dlogits.mul_(loss_scale / (n * temperature));
    r.grad_q = Wrap(dlogits.mm(keys));
    r.logits = Wrap(logits);
    return r;
  });
}

}  // namespace moco::torch_backend
