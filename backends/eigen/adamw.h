// One AdamW update of one parameter tensor on flat arrays: torch.optim.AdamW with amsgrad off
// (rule in moco/core/optimizer.h), the MoCo v3 ViT optimizer.
//
//   AdamWUpdate(p, grad, exp_avg, exp_avg_sq, n, /*step=*/t, /*lr=*/1.5e-4, /*beta1=*/0.9,
//               /*beta2=*/0.999, /*eps=*/1e-8, /*weight_decay=*/0.1);
#ifndef BACKENDS_EIGEN_ADAMW_H_
#define BACKENDS_EIGEN_ADAMW_H_

#include <cmath>
#include <cstdint>

namespace moco {
namespace eigen_backend {

// `step` is this parameter's step count t including this one (1 on the first step, when
// exp_avg and exp_avg_sq must be zero):
//   p *= 1 - lr wd;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
//
// Numerics as torch 1.13's single-tensor AdamW: the hyperparameters are doubles (torch's Python
// floats), the per-step scalars (1 - lr wd, 1 - b1, lr / (1 - b1^t), sqrt(1 - b2^t)) are formed
// in double and rounded to T once, and every element op is in T in torch's order.
template <typename T>
void AdamWUpdate(T* p, const T* grad, T* exp_avg, T* exp_avg_sq, int64_t n, int64_t step,
                 double lr, double beta1, double beta2, double eps, double weight_decay) {
  const T decay = static_cast<T>(1 - lr * weight_decay);
  const T b1 = static_cast<T>(beta1), one_minus_b1 = static_cast<T>(1 - beta1);
  const T b2 = static_cast<T>(beta2), one_minus_b2 = static_cast<T>(1 - beta2);
  const double t = static_cast<double>(step);
  const double bias_correction1 = 1 - std::pow(beta1, t);
  const double bias_correction2 = 1 - std::pow(beta2, t);
  const T neg_step_size = static_cast<T>(-(lr / bias_correction1));
  const T bias_correction2_sqrt = static_cast<T>(std::sqrt(bias_correction2));
  const T eps_t = static_cast<T>(eps);
  for (int64_t i = 0; i < n; ++i) {
    p[i] = p[i] * decay;
    exp_avg[i] = exp_avg[i] * b1 + one_minus_b1 * grad[i];
    exp_avg_sq[i] = exp_avg_sq[i] * b2 + one_minus_b2 * grad[i] * grad[i];
    const T denom = std::sqrt(exp_avg_sq[i]) / bias_correction2_sqrt + eps_t;
    p[i] = p[i] + neg_step_size * exp_avg[i] / denom;
  }
}

}  // namespace eigen_backend
}  // namespace moco

#endif  // BACKENDS_EIGEN_ADAMW_H_
