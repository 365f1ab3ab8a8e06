// Batch normalization over dim 1 (BatchNorm1d for (N, C), BatchNorm2d for (N, C, H, W)) with a
// hand-written backward pass and "split BN" (shuffling BN on one process).
//
// Training mode with `splits` groups: the batch is cut into `splits` groups of N / splits
// consecutive samples; each group is normalized with its own mean and biased variance (as if
// each group sat on its own GPU), and the running statistics move towards the mean over groups
// of each group's statistics, with torch's unbiased variance:
//   running_mean = (1 - momentum) * running_mean + momentum * mean_g(mean_g)
//   running_var  = (1 - momentum) * running_var  + momentum * mean_g(var_g * M / (M - 1))
// where M = (N / splits) * H * W. Eval mode normalizes with the running statistics.
// y = gamma * (x - mean) / sqrt(var + eps) + beta. Channels are spread over OpenMP threads;
// sums are accumulated in double.
//
//   BatchNormCache<float> cache;
//   BatchNormForward(x, gamma, beta, rmean, rvar, {/*train=*/true, /*splits=*/8}, &y, &cache);
//   BatchNormBackward(x, gamma, cache, dy, &dx, dgamma, dbeta);
#ifndef BACKENDS_EIGEN_BATCH_NORM_H_
#define BACKENDS_EIGEN_BATCH_NORM_H_

#include <cmath>
#include <cstdint>
#include <vector>

#include "backends/eigen/blob.h"
#include "glog/logging.h"

namespace moco {
namespace eigen_backend {

struct BatchNormOptions {
  bool train = true;
  int splits = 1;             // groups for batch statistics (train only); must divide N
  bool update_running = true;  // train only: move the running statistics
  double momentum = 0.1;
  double eps = 1e-5;
};

// What the backward pass needs from the forward: per (group, channel) mean and 1/sqrt(var+eps)
// (in eval mode one group holding the running statistics).
template <typename T>
struct BatchNormCache {
  bool train = true;
  int groups = 1;
  std::vector<T> mean;    // (groups, C)
  std::vector<T> invstd;  // (groups, C)
};

namespace bn_internal {
inline int64_t SpatialSize(const std::vector<int64_t>& shape) {
  int64_t s = 1;
  for (size_t i = 2; i < shape.size(); ++i) s *= shape[i];
  return s;
}

// Sum over j in [0, s) of term(j), in double with kLanes independent partial sums: with one
// accumulator these reductions were latency-bound (one add per ~4 cycles), the largest cost of
// the layer. The order is fixed, so results stay deterministic.
template <typename Term>
double LaneSum(int64_t s, const Term& term) {
  constexpr int64_t kLanes = 8;
  double partial[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= s; j += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) partial[l] += term(j + l);
  }
  for (; j < s; ++j) partial[0] += term(j);
  double sum = 0;
  for (int64_t l = 0; l < kLanes; ++l) sum += partial[l];
  return sum;
}

}  // namespace bn_internal

// x: (N, C, ...). y is resized to x's shape. cache may be null (nothing kept).
// In train mode with update_running, running_mean/var are updated in place.
template <typename T>
void BatchNormForward(const Blob<T>& x, const T* gamma, const T* beta, T* running_mean,
                      T* running_var, const BatchNormOptions& opt, Blob<T>* y,
                      typename NonDeduced<BatchNormCache<T>*>::type cache) {
  CHECK_GE(x.rank(), 2);
  const int64_t n = x.dim(0), c = x.dim(1), s = bn_internal::SpatialSize(x.shape);
  const int groups = opt.train ? opt.splits : 1;
  CHECK_GT(groups, 0);
  CHECK_EQ(n % groups, 0) << "batch " << n << " not divisible by BN splits " << groups;
  const int64_t per_group = n / groups;
  const int64_t m = per_group * s;
  if (opt.train) CHECK_GT(m, 1) << "BatchNorm needs more than 1 value per channel in training";
  y->Resize(x.shape);
  std::vector<T> mean(static_cast<size_t>(groups * c)), invstd(static_cast<size_t>(groups * c));
#pragma omp parallel for schedule(static) if (c > 1 && x.numel() > kMinParallelWork)
  for (int64_t ch = 0; ch < c; ++ch) {
    double mean_sum = 0, var_sum = 0;
    for (int g = 0; g < groups; ++g) {
      double mu, var;
      if (opt.train) {
        double sum = 0;
        for (int64_t i = g * per_group; i < (g + 1) * per_group; ++i) {
          const T* xp = x.ptr() + (i * c + ch) * s;
          sum += bn_internal::LaneSum(s, [xp](int64_t j) { return double{xp[j]}; });
        }
        mu = sum / static_cast<double>(m);
        double sq = 0;
        for (int64_t i = g * per_group; i < (g + 1) * per_group; ++i) {
          const T* xp = x.ptr() + (i * c + ch) * s;
          sq += bn_internal::LaneSum(s, [xp, mu](int64_t j) {
            const double d = xp[j] - mu;
            return d * d;
          });
        }
        var = sq / static_cast<double>(m);
        mean_sum += mu;
        var_sum += sq / static_cast<double>(m - 1);
      } else {
        mu = running_mean[ch];
        var = running_var[ch];
      }
      const double is = 1.0 / std::sqrt(var + opt.eps);
      mean[static_cast<size_t>(g * c + ch)] = static_cast<T>(mu);
      invstd[static_cast<size_t>(g * c + ch)] = static_cast<T>(is);
      const double scale = gamma[ch] * is;
      const double shift = beta[ch] - mu * scale;
      for (int64_t i = g * per_group; i < (g + 1) * per_group; ++i) {
        const T* xp = x.ptr() + (i * c + ch) * s;
        T* yp = y->ptr() + (i * c + ch) * s;
        for (int64_t j = 0; j < s; ++j) yp[j] = static_cast<T>(xp[j] * scale + shift);
      }
    }
    if (opt.train && opt.update_running) {
      running_mean[ch] = static_cast<T>((1 - opt.momentum) * running_mean[ch] +
                                        opt.momentum * mean_sum / groups);
      running_var[ch] = static_cast<T>((1 - opt.momentum) * running_var[ch] +
                                       opt.momentum * var_sum / groups);
    }
  }
  if (cache != nullptr) {
    cache->train = opt.train;
    cache->groups = groups;
    cache->mean = std::move(mean);
    cache->invstd = std::move(invstd);
  }
}

// Backward of BatchNormForward given its input x, the cache it filled and dy.
// dx (nullable) is resized and overwritten; dgamma and dbeta (C) are accumulated into.
template <typename T>
void BatchNormBackward(const Blob<T>& x, const T* gamma, const BatchNormCache<T>& cache,
                       const Blob<T>& dy, typename NonDeduced<Blob<T>*>::type dx, T* dgamma,
                       T* dbeta) {
  CHECK(dy.shape == x.shape);
  const int64_t n = x.dim(0), c = x.dim(1), s = bn_internal::SpatialSize(x.shape);
  const int groups = cache.groups;
  const int64_t per_group = n / groups;
  const double m = static_cast<double>(per_group * s);
  if (dx != nullptr) dx->Resize(x.shape);
#pragma omp parallel for schedule(static) if (c > 1 && x.numel() > kMinParallelWork)
  for (int64_t ch = 0; ch < c; ++ch) {
    double dgamma_sum = 0, dbeta_sum = 0;
    for (int g = 0; g < groups; ++g) {
      const double mu = cache.mean[static_cast<size_t>(g * c + ch)];
      const double is = cache.invstd[static_cast<size_t>(g * c + ch)];
      double sum_dy = 0, sum_dy_xhat = 0;
      for (int64_t i = g * per_group; i < (g + 1) * per_group; ++i) {
        const T* xp = x.ptr() + (i * c + ch) * s;
        const T* dyp = dy.ptr() + (i * c + ch) * s;
        sum_dy += bn_internal::LaneSum(s, [dyp](int64_t j) { return double{dyp[j]}; });
        sum_dy_xhat += bn_internal::LaneSum(
            s, [xp, dyp, mu, is](int64_t j) { return dyp[j] * (xp[j] - mu) * is; });
      }
      dgamma_sum += sum_dy_xhat;
      dbeta_sum += sum_dy;
      if (dx == nullptr) continue;
      const double k = gamma[ch] * is;
      // train: dx = k * (dy - mean(dy) - xhat * mean(dy * xhat)); eval: dx = k * dy.
      const double a = cache.train ? sum_dy / m : 0.0;
      const double b = cache.train ? sum_dy_xhat / m : 0.0;
      for (int64_t i = g * per_group; i < (g + 1) * per_group; ++i) {
        const T* xp = x.ptr() + (i * c + ch) * s;
        const T* dyp = dy.ptr() + (i * c + ch) * s;
        T* dxp = dx->ptr() + (i * c + ch) * s;
        for (int64_t j = 0; j < s; ++j) {
          const double xhat = (xp[j] - mu) * is;
          dxp[j] = static_cast<T>(k * (dyp[j] - a - xhat * b));
        }
      }
    }
    dgamma[ch] += static_cast<T>(dgamma_sum);
    dbeta[ch] += static_cast<T>(dbeta_sum);
  }
}

}  // namespace eigen_backend
}  // namespace moco

#endif  // BACKENDS_EIGEN_BATCH_NORM_H_
