// LayerNorm over the last dimension (torch.nn.LayerNorm(D, eps)) with a hand-written backward
// pass: every row of x (..., D) is normalized by its own mean and biased variance, then scaled
// by gamma and shifted by beta (both (D)). Row statistics are summed in double.
//
//   LayerNormCache<float> cache;
//   LayerNormForward(x, gamma, beta, 1e-6, &y, &cache);
//   LayerNormBackward(x, gamma, cache, dy, &dx, dgamma, dbeta);   // accumulates dgamma/dbeta
#ifndef BACKENDS_EIGEN_LAYER_NORM_H_
#define BACKENDS_EIGEN_LAYER_NORM_H_

#include <cmath>
#include <cstdint>
#include <vector>

#include "backends/eigen/blob.h"
#include "glog/logging.h"

namespace moco {
namespace eigen_backend {

// Per row: the mean and 1 / sqrt(var + eps) of the forward.
template <typename T>
struct LayerNormCache {
  std::vector<double> mean, rstd;
};

// y is resized to x's shape.
template <typename T>
void LayerNormForward(const Blob<T>& x, const T* gamma, const T* beta, double eps, Blob<T>* y,
                      LayerNormCache<T>* cache) {
  CHECK_GE(x.rank(), 1);
  const int64_t d = x.shape.back(), rows = x.numel() / d;
  y->Resize(x.shape);
  cache->mean.resize(static_cast<size_t>(rows));
  cache->rstd.resize(static_cast<size_t>(rows));
#pragma omp parallel for schedule(static) if (rows * d > kMinParallelWork)
  for (int64_t r = 0; r < rows; ++r) {
    const T* xp = x.ptr() + r * d;
    double sum = 0;
    for (int64_t j = 0; j < d; ++j) sum += xp[j];
    const double mean = sum / static_cast<double>(d);
    double sq = 0;
    for (int64_t j = 0; j < d; ++j) sq += (xp[j] - mean) * (xp[j] - mean);
    const double rstd = 1.0 / std::sqrt(sq / static_cast<double>(d) + eps);
    cache->mean[static_cast<size_t>(r)] = mean;
    cache->rstd[static_cast<size_t>(r)] = rstd;
    T* yp = y->ptr() + r * d;
    for (int64_t j = 0; j < d; ++j) {
      yp[j] = static_cast<T>((xp[j] - mean) * rstd * gamma[j] + beta[j]);
    }
  }
}

// With g = dy * gamma and xhat = (x - mean) * rstd per row:
//   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),
//   dgamma += sum over rows of dy * xhat, dbeta += sum over rows of dy.
// dx (resized to x's shape) may not alias dy.
template <typename T>
void LayerNormBackward(const Blob<T>& x, const T* gamma, const LayerNormCache<T>& cache,
                       const Blob<T>& dy, Blob<T>* dx, T* dgamma, T* dbeta) {
  CHECK(dy.shape == x.shape);
  const int64_t d = x.shape.back(), rows = x.numel() / d;
  dx->Resize(x.shape);
  std::vector<double> dg(static_cast<size_t>(d), 0.0), db(static_cast<size_t>(d), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    const T* xp = x.ptr() + r * d;
    const T* dyp = dy.ptr() + r * d;
    const double mean = cache.mean[static_cast<size_t>(r)];
    const double rstd = cache.rstd[static_cast<size_t>(r)];
    double g_sum = 0, gx_sum = 0;
    for (int64_t j = 0; j < d; ++j) {
      const double xhat = (xp[j] - mean) * rstd;
      const double g = static_cast<double>(dyp[j]) * gamma[j];
      g_sum += g;
      gx_sum += g * xhat;
      dg[static_cast<size_t>(j)] += static_cast<double>(dyp[j]) * xhat;
      db[static_cast<size_t>(j)] += dyp[j];
    }
    const double g_mean = g_sum / static_cast<double>(d), gx_mean = gx_sum / static_cast<double>(d);
    T* dxp = dx->ptr() + r * d;
    for (int64_t j = 0; j < d; ++j) {
      const double xhat = (xp[j] - mean) * rstd;
      dxp[j] = static_cast<T>(rstd * (static_cast<double>(dyp[j]) * gamma[j] - g_mean -
                                      xhat * gx_mean));
    }
  }
  for (int64_t j = 0; j < d; ++j) {
    dgamma[j] += static_cast<T>(dg[static_cast<size_t>(j)]);
    dbeta[j] += static_cast<T>(db[static_cast<size_t>(j)]);
  }
}

}  // namespace eigen_backend
}  // namespace moco

#endif  // BACKENDS_EIGEN_LAYER_NORM_H_
