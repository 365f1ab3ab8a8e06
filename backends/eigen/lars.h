// One LARS update of one parameter tensor on flat arrays: facebookresearch/moco-v3's LARS
// (rule in moco/core/optimizer.h), the MoCo v3 ResNet optimizer.
//
//   LarsUpdate(p, grad, mu, n, /*adapt=*/ndim > 1, /*lr=*/0.6f, /*momentum=*/0.9f,
//              /*weight_decay=*/1e-6f, /*eta=*/0.001f);
#ifndef BACKENDS_EIGEN_LARS_H_
#define BACKENDS_EIGEN_LARS_H_

#include <cmath>
#include <cstdint>

namespace moco {
namespace eigen_backend {

// adapt (the parameter has more than one dimension):
//   d = grad + weight_decay * p;  q = eta ||p|| / ||d||, or 1 when a norm is 0;  d = q d.
// otherwise: d = grad.
// Then mu = momentum * mu + d (mu must be zero before the first step) and p -= lr * mu.
//
// Numerics: the squared norms are accumulated in double and their roots rounded to T; q is then
// formed in T as (eta ||p||) / ||d||, as moco-v3 forms it from torch.norm's float32 results
// (torch accumulates float32 in vector lanes: the two norms agree to ~1e-7 relative).
template <typename T>
void LarsUpdate(T* p, const T* grad, T* mu, int64_t n, bool adapt, T lr, T momentum,
                T weight_decay, T eta) {
  T q = T(1);
  if (adapt) {
    double pp = 0, dd = 0;
    for (int64_t i = 0; i < n; ++i) {
      const T d = grad[i] + weight_decay * p[i];
      pp += static_cast<double>(p[i]) * static_cast<double>(p[i]);
      dd += static_cast<double>(d) * static_cast<double>(d);
    }
    const T p_norm = static_cast<T>(std::sqrt(pp));
    const T d_norm = static_cast<T>(std::sqrt(dd));
    if (p_norm > T(0) && d_norm > T(0)) q = eta * p_norm / d_norm;
  }
  for (int64_t i = 0; i < n; ++i) {
    const T d = adapt ? (grad[i] + weight_decay * p[i]) * q : grad[i];
    mu[i] = mu[i] * momentum + d;
    p[i] = p[i] - lr * mu[i];
  }
}

}  // namespace eigen_backend
}  // namespace moco

#endif  // BACKENDS_EIGEN_LARS_H_
