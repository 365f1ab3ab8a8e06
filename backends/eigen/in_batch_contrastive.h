// MoCo v3's contrastive loss with in-batch keys (arXiv 2104.02057, Alg. 1 "ctr") and its gradient
// with respect to q:
//   logits = q keys^T / T, (N, M): row i scores query i against every key of the (global) batch;
//   the positive of row i is column offset + i (this rank's keys sit at `offset` in keys);
//   loss   = mean_i (logsumexp(logits_i) - logits_i,offset+i)
//   dL/dq_i = (1 / (N T)) sum_j (p_ij - [j == offset + i]) keys_j,  p = softmax(logits_i).
// keys are constants (the momentum encoder's, no gradient). Loss and gradient are multiplied by
// loss_scale (v3: 2T).
//
//   InfoNceResult<float> r = InBatchContrastiveForwardBackward(q, keys, /*offset=*/0, 1.0f, 2.0f);
#ifndef BACKENDS_EIGEN_IN_BATCH_CONTRASTIVE_H_
#define BACKENDS_EIGEN_IN_BATCH_CONTRASTIVE_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "Eigen/Core"
#include "backends/eigen/blob.h"
#include "backends/eigen/info_nce.h"
#include "glog/logging.h"

namespace moco {
namespace eigen_backend {

// q: (N, D); keys: (M, D) with 0 <= offset and offset + N <= M; temperature > 0 (the caller
// checks). top1 counts rows whose first maximal logit is the positive (torch's argmax rule).
template <typename T>
InfoNceResult<T> InBatchContrastiveForwardBackward(const Blob<T>& q, const Blob<T>& keys,
                                                   int64_t offset, T temperature,
                                                   T loss_scale = T(1)) {
  using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const int64_t n = q.dim(0), d = q.dim(1), m = keys.dim(0);
  CHECK_EQ(keys.dim(1), d);
  CHECK(offset >= 0 && offset + n <= m);
  InfoNceResult<T> r;
  r.logits.Resize({n, m});
  r.grad_q.Resize({n, d});
  Eigen::Map<const RowMatrix> qm(q.ptr(), n, d), km(keys.ptr(), m, d);
  Eigen::Map<RowMatrix> logits(r.logits.ptr(), n, m);
  logits.noalias() = qm * km.transpose();
  logits *= T(1) / temperature;
  RowMatrix g(n, m);
  std::vector<double> row_loss(static_cast<size_t>(n));
  std::vector<char> row_correct(static_cast<size_t>(n));
#pragma omp parallel for schedule(static) if (n * m > kMinParallelWork)
  for (int64_t i = 0; i < n; ++i) {
    const T* li = r.logits.ptr() + i * m;
    const int64_t pos = offset + i;
    int64_t argmax = 0;
    for (int64_t j = 1; j < m; ++j) argmax = li[j] > li[argmax] ? j : argmax;
    const T mx = li[argmax];
    double sum = 0;
    for (int64_t j = 0; j < m; ++j) sum += std::exp(static_cast<double>(li[j] - mx));
    const double lse = mx + std::log(sum);
    row_loss[static_cast<size_t>(i)] = lse - li[pos];
    row_correct[static_cast<size_t>(i)] = argmax == pos ? 1 : 0;
    const double scale = loss_scale / (static_cast<double>(n) * temperature);
    for (int64_t j = 0; j < m; ++j) {
      const double p = std::exp(static_cast<double>(li[j]) - lse);
      g(i, j) = static_cast<T>((p - (j == pos ? 1.0 : 0.0)) * scale);
    }
  }
  double loss_sum = 0;
  int64_t correct = 0;
  for (int64_t i = 0; i < n; ++i) {  // row order: deterministic regardless of threads
    loss_sum += row_loss[static_cast<size_t>(i)];
    correct += row_correct[static_cast<size_t>(i)];
  }
  r.loss = loss_scale * loss_sum / static_cast<double>(n);
  r.top1 = static_cast<double>(correct) / static_cast<double>(n);
  Eigen::Map<RowMatrix>(r.grad_q.ptr(), n, d).noalias() = g * km;
  return r;
}

}  // namespace eigen_backend
}  // namespace moco

#endif  // BACKENDS_EIGEN_IN_BATCH_CONTRASTIVE_H_
