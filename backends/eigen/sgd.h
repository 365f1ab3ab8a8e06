// Parameter updates on flat arrays: torch.optim.SGD (momentum, weight decay, no dampening, no
// Nesterov) and MoCo's momentum (EMA) update of the key encoder.
//
//   SgdUpdate(p, grad, buf, n, /*first_step=*/true, /*lr=*/0.03f, /*momentum=*/0.9f, 1e-4f);
//   MomentumUpdate(key_p, query_p, n, /*m=*/0.999f);
#ifndef BACKENDS_EIGEN_SGD_H_
#define BACKENDS_EIGEN_SGD_H_

#include <cstdint>

namespace moco {
namespace eigen_backend {

// g = grad + weight_decay * p; buf = first_step ? g : momentum * buf + g; p -= lr * buf.
// With momentum == 0 no buffer is used (buf may be null): p -= lr * g.
template <typename T>
void SgdUpdate(T* p, const T* grad, T* buf, int64_t n, bool first_step, T lr, T momentum,
               T weight_decay) {
  for (int64_t i = 0; i < n; ++i) {
    T g = grad[i];
    if (weight_decay != T(0)) g = g + weight_decay * p[i];
    if (momentum != T(0)) {
      buf[i] = first_step ? g : buf[i] * momentum + g;
      g = buf[i];
    }
    p[i] = p[i] - lr * g;
  }
}

// dst = m * dst + (1 - m) * src.
template <typename T>
void MomentumUpdate(T* dst, const T* src, int64_t n, T m) {
  const T one_minus = T(1) - m;
  for (int64_t i = 0; i < n; ++i) dst[i] = dst[i] * m + src[i] * one_minus;
}

}  // namespace eigen_backend
}  // namespace moco

#endif  // BACKENDS_EIGEN_SGD_H_
