// InfoNCE with a queue of negatives (MoCo eq. 1) and its gradient with respect to q:
//   logits = [q_i . k_i, q_i . queue_j for j < K] / T    (positive first), (N, 1 + K)
//   loss   = mean_i (logsumexp(logits_i) - logits_i0)
//   dL/dq_i = (1 / (N T)) ((p_i0 - 1) k_i + sum_j p_ij queue_j),  p = softmax(logits_i)
// k and the queue are constants (no gradient), as in MoCo.
//
//   InfoNceResult<float> r = InfoNceForwardBackward(q, k, queue, /*temperature=*/0.2f);
#ifndef BACKENDS_EIGEN_INFO_NCE_H_
#define BACKENDS_EIGEN_INFO_NCE_H_

#include <algorithm>
#include <cmath>
#include <vector>
#include <cstdint>

#include "Eigen/Core"
#include "backends/eigen/blob.h"
#include "glog/logging.h"

namespace moco {
namespace eigen_backend {

template <typename T>
struct InfoNceResult {
  double loss = 0;  // mean over the batch
  double top1 = 0;  // fraction of rows whose positive logit is the strict maximum
  Blob<T> logits;   // (N, 1 + K)
  Blob<T> grad_q;   // (N, D)
};

// q, k: (N, D); queue: (K, D). temperature > 0 (checked by the caller).
template <typename T>
InfoNceResult<T> InfoNceForwardBackward(const Blob<T>& q, const Blob<T>& k, const Blob<T>& queue,
                                        T temperature) {
  using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const int64_t n = q.dim(0), d = q.dim(1), kq = queue.dim(0);
  CHECK(k.shape == q.shape);
  CHECK_EQ(queue.dim(1), d);
  InfoNceResult<T> r;
  r.logits.Resize({n, 1 + kq});
  r.grad_q.Resize({n, d});
  Eigen::Map<const RowMatrix> qm(q.ptr(), n, d), km(k.ptr(), n, d), queue_m(queue.ptr(), kq, d);
  Eigen::Map<RowMatrix> logits(r.logits.ptr(), n, 1 + kq);
  const T inv_t = T(1) / temperature;
  logits.rightCols(kq).noalias() = qm * queue_m.transpose();
  logits.rightCols(kq) *= inv_t;
  // The positive logits in index order, as the linear layer's bias (linear.h): a vectorized
  // reduction's rounding may depend on the buffer's address.
  for (int64_t i = 0; i < n; ++i) {
    T dot = 0;
    for (int64_t j = 0; j < d; ++j) dot += q.ptr()[i * d + j] * k.ptr()[i * d + j];
    logits(i, 0) = dot * inv_t;
  }

  // probs - onehot(0), scaled by 1 / (N T): the gradient w.r.t. the (unscaled) similarities.
  RowMatrix g(n, 1 + kq);
  // Per-row results summed in row order afterwards: deterministic regardless of threads.
  std::vector<double> row_loss(static_cast<size_t>(n));
  std::vector<char> row_correct(static_cast<size_t>(n));
#pragma omp parallel for schedule(static) if (n * kq > kMinParallelWork)
  for (int64_t i = 0; i < n; ++i) {
    const T* li = r.logits.ptr() + i * (1 + kq);
    T mx = li[0];
    for (int64_t j = 1; j <= kq; ++j) mx = std::max(mx, li[j]);
    double sum = 0;
    for (int64_t j = 0; j <= kq; ++j) sum += std::exp(static_cast<double>(li[j] - mx));
    const double lse = mx + std::log(sum);
    row_loss[static_cast<size_t>(i)] = lse - li[0];
    bool best = true;
    for (int64_t j = 1; j <= kq; ++j) best = best && li[j] < li[0];
    row_correct[static_cast<size_t>(i)] = best ? 1 : 0;
    const double scale = 1.0 / (static_cast<double>(n) * temperature);
    for (int64_t j = 0; j <= kq; ++j) {
      const double p = std::exp(static_cast<double>(li[j]) - lse);
      g(i, j) = static_cast<T>((p - (j == 0 ? 1.0 : 0.0)) * scale);
    }
  }
  double loss_sum = 0;
  int64_t correct = 0;
  for (int64_t i = 0; i < n; ++i) {
    loss_sum += row_loss[static_cast<size_t>(i)];
    correct += row_correct[static_cast<size_t>(i)];
  }
  r.loss = loss_sum / static_cast<double>(n);
  r.top1 = static_cast<double>(correct) / static_cast<double>(n);
  Eigen::Map<RowMatrix> gq(r.grad_q.ptr(), n, d);
  gq.noalias() = g.rightCols(kq) * queue_m;
  gq += km.cwiseProduct(g.col(0).replicate(1, d));
  return r;
}

}  // namespace eigen_backend
}  // namespace moco

#endif  // BACKENDS_EIGEN_INFO_NCE_H_
