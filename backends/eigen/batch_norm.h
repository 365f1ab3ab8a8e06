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
// With BatchNormOptions::group (SyncBatchNorm, MoCo v3 under data parallelism; splits must be
// 1), training statistics are those of the union of every rank's batch: per-channel statistics
// are combined over the group (one collective in the forward, one in the backward), and the
// input gradient is that of one BatchNorm over all ranks' samples; dgamma and dbeta stay this
// rank's share.
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

// The ranks a SyncBatchNorm normalizes over (implemented on the run's communicator by the
// encoder). Every rank calls AllReduceSum at the same points with the same lengths.
class BatchNormGroup {
 public:
  virtual ~BatchNormGroup() = default;
  virtual int world_size() const = 0;
  virtual int rank() const = 0;
  // Element-wise sum over the ranks, in place. A failing implementation leaves `values` as
  // they were and reports the failure on its own channel (the layer cannot return errors).
  virtual void AllReduceSum(std::vector<double>& values) = 0;
};

struct BatchNormOptions {
  bool train = true;
  int splits = 1;             // groups for batch statistics (train only); must divide N
  bool update_running = true;  // train only: move the running statistics
  double momentum = 0.1;
  double eps = 1e-5;
  BatchNormGroup* group = nullptr;  // train only: SyncBatchNorm over these ranks (not owned)
};

// What the backward pass needs from the forward: per (group, channel) mean and 1/sqrt(var+eps)
// (in eval mode one group holding the running statistics).
template <typename T>
struct BatchNormCache {
  bool train = true;
  int groups = 1;
  std::vector<T> mean;    // (groups, C)
  std::vector<T> invstd;  // (groups, C)
  BatchNormGroup* group = nullptr;  // set by a SyncBatchNorm forward: its backward syncs too
  int64_t global_count = 0;         // SyncBatchNorm: values per channel over all ranks
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

// Per-channel sums over (N, spatial) of term(ch, k), k the flat index of a value of channel ch.
template <typename T, typename Term>
std::vector<double> ChannelSums(const Blob<T>& x, const Term& term) {
  const int64_t n = x.dim(0), c = x.dim(1), s = SpatialSize(x.shape);
  std::vector<double> sums(static_cast<size_t>(c), 0.0);
#pragma omp parallel for schedule(static) if (c > 1 && x.numel() > kMinParallelWork)
  for (int64_t ch = 0; ch < c; ++ch) {
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t offset = (i * c + ch) * s;
      sum += LaneSum(s, [&term, ch, offset](int64_t j) { return term(ch, offset + j); });
    }
    sums[static_cast<size_t>(ch)] = sum;
  }
  return sums;
}

}  // namespace bn_internal

// SyncBatchNorm's training forward (BatchNormForward dispatches here when opt.group is set).
template <typename T>
void SyncBatchNormForward(const Blob<T>& x, const T* gamma, const T* beta, T* running_mean,
                          T* running_var, const BatchNormOptions& opt, Blob<T>* y,
                          BatchNormCache<T>* cache) {
  CHECK(opt.train && opt.group != nullptr);
  CHECK_EQ(opt.splits, 1) << "SyncBatchNorm needs BN splits 1";
  const int64_t c = x.dim(1), s = bn_internal::SpatialSize(x.shape);
  // Every rank's batch has this rank's shape (the collectives' contract).
  const int64_t count = x.numel() / c * opt.group->world_size();
  CHECK_GT(count, 1) << "BatchNorm needs more than 1 value per channel in training";
  const T* xp = x.ptr();
  // One collective: every rank's per-channel mean m_r and squared deviations M2_r about it,
  // combined as Chan et al.'s parallel variance (equal counts n per rank):
  //   mean = avg_r m_r,   M2 = sum_r M2_r + n * sum_r (m_r - mean)^2.
  // Gathered as a sum of zero-padded per-rank slots (adding zeros is exact).
  const int64_t local = x.numel() / c;
  const int world = opt.group->world_size(), rank = opt.group->rank();
  std::vector<double> local_mean =
      bn_internal::ChannelSums(x, [xp](int64_t, int64_t k) { return double{xp[k]}; });
  for (double& v : local_mean) v /= static_cast<double>(local);
  const std::vector<double> local_m2 =
      bn_internal::ChannelSums(x, [xp, &local_mean](int64_t ch, int64_t k) {
        const double d = xp[k] - local_mean[static_cast<size_t>(ch)];
        return d * d;
      });
  std::vector<double> slots(static_cast<size_t>(world * 2 * c), 0.0);
  std::copy(local_mean.begin(), local_mean.end(), slots.begin() + rank * 2 * c);
  std::copy(local_m2.begin(), local_m2.end(), slots.begin() + rank * 2 * c + c);
  opt.group->AllReduceSum(slots);
  std::vector<double> mean(static_cast<size_t>(c), 0.0), sq(static_cast<size_t>(c), 0.0);
  for (int64_t ch = 0; ch < c; ++ch) {
    for (int r = 0; r < world; ++r) mean[ch] += slots[r * 2 * c + ch];
    mean[ch] /= world;
    for (int r = 0; r < world; ++r) {
      const double d = slots[r * 2 * c + ch] - mean[ch];
      sq[ch] += slots[r * 2 * c + c + ch] + static_cast<double>(local) * d * d;
    }
  }
  y->Resize(x.shape);
  std::vector<T> mean_t(static_cast<size_t>(c)), invstd_t(static_cast<size_t>(c));
  const int64_t n = x.dim(0);
#pragma omp parallel for schedule(static) if (c > 1 && x.numel() > kMinParallelWork)
  for (int64_t ch = 0; ch < c; ++ch) {
    const double mu = mean[static_cast<size_t>(ch)];
    const double var = sq[static_cast<size_t>(ch)] / static_cast<double>(count);
    const double is = 1.0 / std::sqrt(var + opt.eps);
    mean_t[static_cast<size_t>(ch)] = static_cast<T>(mu);
    invstd_t[static_cast<size_t>(ch)] = static_cast<T>(is);
    const double scale = gamma[ch] * is;
    const double shift = beta[ch] - mu * scale;
    for (int64_t i = 0; i < n; ++i) {
      const T* in = x.ptr() + (i * c + ch) * s;
      T* out = y->ptr() + (i * c + ch) * s;
      for (int64_t j = 0; j < s; ++j) out[j] = static_cast<T>(in[j] * scale + shift);
    }
    if (opt.update_running) {
      running_mean[ch] = static_cast<T>((1 - opt.momentum) * running_mean[ch] + opt.momentum * mu);
      running_var[ch] = static_cast<T>((1 - opt.momentum) * running_var[ch] +
                                       opt.momentum * sq[static_cast<size_t>(ch)] /
                                           static_cast<double>(count - 1));
    }
  }
  if (cache != nullptr) {
    cache->train = true;
    cache->groups = 1;
    cache->mean = std::move(mean_t);
    cache->invstd = std::move(invstd_t);
    cache->group = opt.group;
    cache->global_count = count;
  }
}

// SyncBatchNorm's backward (BatchNormBackward dispatches here when cache.group is set).
template <typename T>
void SyncBatchNormBackward(const Blob<T>& x, const T* gamma, const BatchNormCache<T>& cache,
                           const Blob<T>& dy, Blob<T>* dx, T* dgamma, T* dbeta) {
  const int64_t n = x.dim(0), c = x.dim(1), s = bn_internal::SpatialSize(x.shape);
  const T* xp = x.ptr();
  const T* dyp = dy.ptr();
  const T* mean = cache.mean.data();
  const T* invstd = cache.invstd.data();
  std::vector<double> sum_dy =
      bn_internal::ChannelSums(x, [dyp](int64_t, int64_t k) { return double{dyp[k]}; });
  std::vector<double> sum_dy_xhat =
      bn_internal::ChannelSums(x, [xp, dyp, mean, invstd](int64_t ch, int64_t k) {
        return dyp[k] * (xp[k] - double{mean[ch]}) * invstd[ch];
      });
  std::vector<double> global(sum_dy);
  global.insert(global.end(), sum_dy_xhat.begin(), sum_dy_xhat.end());
  cache.group->AllReduceSum(global);
  const double m = static_cast<double>(cache.global_count);
  if (dx != nullptr) dx->Resize(x.shape);
#pragma omp parallel for schedule(static) if (c > 1 && x.numel() > kMinParallelWork)
  for (int64_t ch = 0; ch < c; ++ch) {
    dgamma[ch] += static_cast<T>(sum_dy_xhat[static_cast<size_t>(ch)]);
    dbeta[ch] += static_cast<T>(sum_dy[static_cast<size_t>(ch)]);
    if (dx == nullptr) continue;
    const double mu = mean[ch], is = invstd[ch];
    const double k = gamma[ch] * is;
    const double a = global[static_cast<size_t>(ch)] / m;
    const double b = global[static_cast<size_t>(c + ch)] / m;
    for (int64_t i = 0; i < n; ++i) {
      const T* in = x.ptr() + (i * c + ch) * s;
      const T* d = dy.ptr() + (i * c + ch) * s;
      T* out = dx->ptr() + (i * c + ch) * s;
      for (int64_t j = 0; j < s; ++j) {
        const double xhat = (in[j] - mu) * is;
        out[j] = static_cast<T>(k * (d[j] - a - xhat * b));
      }
    }
  }
}

// x: (N, C, ...). y is resized to x's shape. cache may be null (nothing kept).
// In train mode with update_running, running_mean/var are updated in place.
template <typename T>
void BatchNormForward(const Blob<T>& x, const T* gamma, const T* beta, T* running_mean,
                      T* running_var, const BatchNormOptions& opt, Blob<T>* y,
                      typename NonDeduced<BatchNormCache<T>*>::type cache) {
  CHECK_GE(x.rank(), 2);
  if (opt.train && opt.group != nullptr) {
    SyncBatchNormForward(x, gamma, beta, running_mean, running_var, opt, y, cache);
    return;
  }
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
    cache->group = nullptr;
  }
}

// Backward of BatchNormForward given its input x, the cache it filled and dy.
// dx (nullable) is resized and overwritten; dgamma and dbeta (C) are accumulated into.
template <typename T>
void BatchNormBackward(const Blob<T>& x, const T* gamma, const BatchNormCache<T>& cache,
                       const Blob<T>& dy, typename NonDeduced<Blob<T>*>::type dx, T* dgamma,
                       T* dbeta) {
  CHECK(dy.shape == x.shape);
  if (cache.group != nullptr) {
    SyncBatchNormBackward(x, gamma, cache, dy, dx, dgamma, dbeta);
    return;
  }
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
