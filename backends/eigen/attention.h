// The core of multi-head self-attention (timm's Attention between its qkv and proj Linears),
// with a hand-written backward pass. Per image n and head h, with Q, K, V the head's (T, Dh)
// slices of qkv:
//   P = softmax(Q K^T / sqrt(Dh)) row-wise (max-subtracted), O = P V,
// and out[n, t, h * Dh + j] = O[t, j]: heads concatenated in order.
// qkv is (N, T, 3D) laid out as timm's: the last dimension is [q | k | v], each D = H * Dh wide
// with head h at columns h * Dh .. (h + 1) * Dh.
//
//   AttentionCache<float> cache;
//   AttentionForward(qkv, num_heads, &out, &cache);      // out (N, T, D)
//   AttentionBackward(qkv, num_heads, cache, d_out, &d_qkv);
#ifndef BACKENDS_EIGEN_ATTENTION_H_
#define BACKENDS_EIGEN_ATTENTION_H_

#include <cmath>
#include <cstdint>

#include "Eigen/Core"
#include "backends/eigen/blob.h"
#include "glog/logging.h"

namespace moco {
namespace eigen_backend {

template <typename T>
struct AttentionCache {
  Blob<T> probs;  // (N, H, T, T): P of every image and head
  // Backward scratch, one (T, T) matrix per image and head.
  Blob<T> d_probs;
};

namespace attention_internal {
template <typename T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Stride = Eigen::OuterStride<Eigen::Dynamic>;
// A (rows, cols) row-major view whose rows are `stride` elements apart.
template <typename T>
using StridedMap = Eigen::Map<RowMatrix<T>, Eigen::Unaligned, Stride>;
template <typename T>
using ConstStridedMap = Eigen::Map<const RowMatrix<T>, Eigen::Unaligned, Stride>;
}  // namespace attention_internal

// out is resized to (N, T, D).
template <typename T>
void AttentionForward(const Blob<T>& qkv, int num_heads, Blob<T>* out, AttentionCache<T>* cache) {
  using namespace attention_internal;  // NOLINT
  CHECK_EQ(qkv.rank(), 3);
  const int64_t n = qkv.dim(0), t = qkv.dim(1), d = qkv.dim(2) / 3, h = num_heads;
  CHECK_EQ(qkv.dim(2), 3 * d);
  CHECK_EQ(d % h, 0);
  const int64_t dh = d / h;
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(dh)));
  out->Resize({n, t, d});
  cache->probs.Resize({n, h, t, t});
  // One (image, head) pair per iteration; Eigen's products inside run single-threaded.
#pragma omp parallel for schedule(static) if (n * h * t * t * dh > kMinParallelWork)
  for (int64_t nh = 0; nh < n * h; ++nh) {
    const int64_t i = nh / h, head = nh % h;
    const T* base = qkv.ptr() + i * t * 3 * d + head * dh;
    ConstStridedMap<T> q(base, t, dh, Stride(3 * d));
    ConstStridedMap<T> k(base + d, t, dh, Stride(3 * d));
    ConstStridedMap<T> v(base + 2 * d, t, dh, Stride(3 * d));
    Eigen::Map<RowMatrix<T>> p(cache->probs.ptr() + nh * t * t, t, t);
    p.noalias() = (q * k.transpose()) * scale;
    // Softmax per row with scalar exp and an index-order sum, as the linear layer's bias
    // (linear.h): a vectorized reduction's rounding may depend on the buffer's address.
    for (int64_t r = 0; r < t; ++r) {
      T* row = p.data() + r * t;
      const T mx = p.row(r).maxCoeff();
      T sum = 0;
      for (int64_t j = 0; j < t; ++j) sum += (row[j] = std::exp(row[j] - mx));
      for (int64_t j = 0; j < t; ++j) row[j] /= sum;
    }
    StridedMap<T> o(out->ptr() + i * t * d + head * dh, t, dh, Stride(d));
    o.noalias() = p * v;
  }
}

// Given the forward's qkv and cache and d_out = d(loss)/d(out) (N, T, D), writes d_qkv (resized
// to qkv's shape):
//   dV = P^T dO, dP = dO V^T, dS = P * (dP - rowsum(dP * P)) / sqrt(Dh), dQ = dS K, dK = dS^T Q.
template <typename T>
void AttentionBackward(const Blob<T>& qkv, int num_heads, AttentionCache<T>* cache,
                       const Blob<T>& d_out, Blob<T>* d_qkv) {
  using namespace attention_internal;  // NOLINT
  const int64_t n = qkv.dim(0), t = qkv.dim(1), d = qkv.dim(2) / 3, h = num_heads;
  const int64_t dh = d / h;
  CHECK(d_out.shape == (std::vector<int64_t>{n, t, d}));
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(dh)));
  d_qkv->Resize(qkv.shape);
  cache->d_probs.Resize({n, h, t, t});
#pragma omp parallel for schedule(static) if (n * h * t * t * dh > kMinParallelWork)
  for (int64_t nh = 0; nh < n * h; ++nh) {
    const int64_t i = nh / h, head = nh % h;
    const int64_t offset = i * t * 3 * d + head * dh;
    ConstStridedMap<T> q(qkv.ptr() + offset, t, dh, Stride(3 * d));
    ConstStridedMap<T> k(qkv.ptr() + offset + d, t, dh, Stride(3 * d));
    ConstStridedMap<T> v(qkv.ptr() + offset + 2 * d, t, dh, Stride(3 * d));
    StridedMap<T> dq(d_qkv->ptr() + offset, t, dh, Stride(3 * d));
    StridedMap<T> dk(d_qkv->ptr() + offset + d, t, dh, Stride(3 * d));
    StridedMap<T> dv(d_qkv->ptr() + offset + 2 * d, t, dh, Stride(3 * d));
    ConstStridedMap<T> d_o(d_out.ptr() + i * t * d + head * dh, t, dh, Stride(d));
    Eigen::Map<const RowMatrix<T>> p(cache->probs.ptr() + nh * t * t, t, t);
    Eigen::Map<RowMatrix<T>> ds(cache->d_probs.ptr() + nh * t * t, t, t);
    dv.noalias() = p.transpose() * d_o;
    ds.noalias() = d_o * v.transpose();  // dP
    for (int64_t r = 0; r < t; ++r) {
      T dot = 0;  // index order (see the softmax above)
      for (int64_t j = 0; j < t; ++j) dot += ds(r, j) * p(r, j);
      ds.row(r) = (p.row(r).array() * (ds.row(r).array() - dot) * scale).matrix();
    }
    dq.noalias() = ds * k;
    dk.noalias() = ds.transpose() * q;
  }
}

}  // namespace eigen_backend
}  // namespace moco

#endif  // BACKENDS_EIGEN_ATTENTION_H_
