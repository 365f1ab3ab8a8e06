// Element-wise layers with hand-written backward passes: ReLU, GELU (the exact erf form,
// torch.nn.functional.gelu's default), residual add, and row-wise L2 normalization
// (torch.nn.functional.normalize(x, dim=1), eps 1e-12).
//
//   ReluInPlace(&y);                        // y = max(y, 0)
//   ReluBackwardInPlace(y, &dy);            // dy *= (y > 0), y the ReLU output
//   GeluForward(x, &y);                     // y = x * Phi(x)
//   GeluBackward(x, dy, &dx);               // dx = dy * (Phi(x) + x * phi(x))
//   AddInPlace(identity, &y);               // y += identity
//   L2NormalizeRowsForward(x, &y, &norms);  // y = x / max(|x|, eps)
//   L2NormalizeRowsBackward(y, norms, dy, &dx);
#ifndef BACKENDS_EIGEN_ELEMENTWISE_H_
#define BACKENDS_EIGEN_ELEMENTWISE_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "backends/eigen/blob.h"
#include "glog/logging.h"

namespace moco {
namespace eigen_backend {

template <typename T>
void ReluInPlace(Blob<T>* y) {
  T* p = y->ptr();
  const int64_t n = y->numel();
#pragma omp parallel for schedule(static) if (n > kMinParallelWork)
  for (int64_t i = 0; i < n; ++i) p[i] = p[i] > T(0) ? p[i] : T(0);
}

// Given the ReLU's output y, zeroes dy where y <= 0 (torch's threshold_backward: the gradient at
// exactly 0 is 0).
template <typename T>
void ReluBackwardInPlace(const Blob<T>& y, Blob<T>* dy) {
  CHECK_EQ(y.numel(), dy->numel());
  const T* yp = y.ptr();
  T* d = dy->ptr();
  const int64_t n = y.numel();
#pragma omp parallel for schedule(static) if (n > kMinParallelWork)
  // The unconditional load of d[i] lets the compiler vectorize the select (a conditional
  // load does not, and this pass was ~7% of an Eigen training step).
  for (int64_t i = 0; i < n; ++i) {
    const T g = d[i];
    d[i] = yp[i] > T(0) ? g : T(0);
  }
}

// y = x * Phi(x), Phi the standard normal CDF = (1 + erf(x / sqrt(2))) / 2. y resized to x's.
template <typename T>
void GeluForward(const Blob<T>& x, Blob<T>* y) {
  y->Resize(x.shape);
  const T* xp = x.ptr();
  T* yp = y->ptr();
  const int64_t n = x.numel();
#pragma omp parallel for schedule(static) if (n > kMinParallelWork)
  for (int64_t i = 0; i < n; ++i) {
    yp[i] = static_cast<T>(0.5) * xp[i] * (T(1) + std::erf(xp[i] * static_cast<T>(M_SQRT1_2)));
  }
}

// Given the forward's input x: dx = dy * (Phi(x) + x * phi(x)), phi the standard normal density.
// dx (resized to x's shape) may alias dy.
template <typename T>
void GeluBackward(const Blob<T>& x, const Blob<T>& dy, Blob<T>* dx) {
  CHECK_EQ(x.numel(), dy.numel());
  if (dx != &dy) dx->Resize(x.shape);
  const T* xp = x.ptr();
  const T* dyp = dy.ptr();
  T* dxp = dx->ptr();
  const int64_t n = x.numel();
  const T inv_sqrt_2pi = static_cast<T>(0.5 * M_2_SQRTPI * M_SQRT1_2);
#pragma omp parallel for schedule(static) if (n > kMinParallelWork)
  for (int64_t i = 0; i < n; ++i) {
    const T v = xp[i];
    const T cdf = static_cast<T>(0.5) * (T(1) + std::erf(v * static_cast<T>(M_SQRT1_2)));
    const T pdf = inv_sqrt_2pi * std::exp(static_cast<T>(-0.5) * v * v);
    dxp[i] = dyp[i] * (cdf + v * pdf);
  }
}

// y += x (same shape). Its backward passes the gradient unchanged to both operands.
template <typename T>
void AddInPlace(const Blob<T>& x, Blob<T>* y) {
  CHECK(x.shape == y->shape);
  const T* xp = x.ptr();
  T* yp = y->ptr();
  const int64_t n = x.numel();
#pragma omp parallel for schedule(static) if (n > kMinParallelWork)
  for (int64_t i = 0; i < n; ++i) yp[i] += xp[i];
}

constexpr double kL2NormalizeEps = 1e-12;

// x (N, D) -> y = x / max(||x_row||, 1e-12). norms (nullable) receives max(||x_row||, eps).
template <typename T>
void L2NormalizeRowsForward(const Blob<T>& x, Blob<T>* y,
                            typename NonDeduced<std::vector<T>*>::type norms) {
  CHECK_EQ(x.rank(), 2);
  const int64_t n = x.dim(0), d = x.dim(1);
  y->Resize(x.shape);
  if (norms != nullptr) norms->resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const T* xp = x.ptr() + i * d;
    double sq = 0;
    for (int64_t j = 0; j < d; ++j) sq += static_cast<double>(xp[j]) * xp[j];
    const double norm = std::max(std::sqrt(sq), kL2NormalizeEps);
    for (int64_t j = 0; j < d; ++j) y->ptr()[i * d + j] = static_cast<T>(xp[j] / norm);
    if (norms != nullptr) (*norms)[static_cast<size_t>(i)] = static_cast<T>(norm);
  }
}

// Given the forward's output y, its norms and dy: dx = (dy - y * <y, dy>) / norm where the norm
// exceeded eps, and dx = dy / eps where it was clamped (then y = x / eps is linear in x).
template <typename T>
void L2NormalizeRowsBackward(const Blob<T>& y, const std::vector<T>& norms, const Blob<T>& dy,
                             Blob<T>* dx) {
  const int64_t n = y.dim(0), d = y.dim(1);
  CHECK(dy.shape == y.shape);
  dx->Resize(y.shape);
  for (int64_t i = 0; i < n; ++i) {
    const T* yp = y.ptr() + i * d;
    const T* dyp = dy.ptr() + i * d;
    T* dxp = dx->ptr() + i * d;
    const double norm = norms[static_cast<size_t>(i)];
    double dot = 0;
    for (int64_t j = 0; j < d; ++j) dot += static_cast<double>(yp[j]) * dyp[j];
    if (norm <= kL2NormalizeEps) dot = 0;
    for (int64_t j = 0; j < d; ++j) dxp[j] = static_cast<T>((dyp[j] - yp[j] * dot) / norm);
  }
}

}  // namespace eigen_backend
}  // namespace moco

#endif  // BACKENDS_EIGEN_ELEMENTWISE_H_
