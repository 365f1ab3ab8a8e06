// Fully connected layer y = x W^T + b (torch.nn.Linear), x (..., in), W (out, in), b (out), with
// a hand-written backward pass. Leading dimensions of x are rows, as in torch: a ViT's tokens
// (N, T, D) are N * T rows. The GEMMs use Eigen (multi-threaded through OpenMP).
//
//   LinearForward(x, w.data(), b.data(), /*out_features=*/128, &y);
//   LinearBackward(x, w.data(), dy, &dx, dw.data(), db.data());
#ifndef BACKENDS_EIGEN_LINEAR_H_
#define BACKENDS_EIGEN_LINEAR_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "Eigen/Core"
#include "backends/eigen/blob.h"
#include "glog/logging.h"

namespace moco {
namespace eigen_backend {

namespace linear_internal {
template <typename T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using RowVector = Eigen::Matrix<T, 1, Eigen::Dynamic>;
}  // namespace linear_internal

// y is resized to (..., out_features), x's leading dimensions. bias may be null.
template <typename T>
void LinearForward(const Blob<T>& x, const T* weight, typename NonDeduced<const T*>::type bias,
                   int64_t out_features, Blob<T>* y) {
  using linear_internal::RowMatrix;
  CHECK_GE(x.rank(), 2);
  const int64_t in = x.shape.back(), n = x.numel() / in;
  std::vector<int64_t> y_shape = x.shape;
  y_shape.back() = out_features;
  y->Resize(std::move(y_shape));
  Eigen::Map<const RowMatrix<T>> xm(x.ptr(), n, in);
  Eigen::Map<const RowMatrix<T>> wm(weight, out_features, in);
  Eigen::Map<RowMatrix<T>> ym(y->ptr(), n, out_features);
  ym.noalias() = xm * wm.transpose();
  if (bias != nullptr) {
    ym.rowwise() += Eigen::Map<const linear_internal::RowVector<T>>(bias, out_features);
  }
}

// dx (nullable) is resized and overwritten; dweight (out, in) and dbias (out, nullable) are
// accumulated into.
template <typename T>
void LinearBackward(const Blob<T>& x, const T* weight, const Blob<T>& dy,
                    typename NonDeduced<Blob<T>*>::type dx, T* dweight,
                    typename NonDeduced<T*>::type dbias) {
  using linear_internal::RowMatrix;
  const int64_t in = x.shape.back(), n = x.numel() / in, out = dy.shape.back();
  CHECK_EQ(dy.numel(), n * out);
  Eigen::Map<const RowMatrix<T>> xm(x.ptr(), n, in);
  Eigen::Map<const RowMatrix<T>> wm(weight, out, in);
  Eigen::Map<const RowMatrix<T>> dym(dy.ptr(), n, out);
  Eigen::Map<RowMatrix<T>>(dweight, out, in).noalias() += dym.transpose() * xm;
  if (dbias != nullptr) {
    // Row by row, in order. Eigen's vectorized colwise().sum() rounded differently depending
    // on where dy was allocated (measured: ulps of the head's bias between identical runs;
    // tests/loss_scaling_test FreshRunsRepeatEachOtherBitwise), so the reference did not
    // repeat itself.
    Eigen::Map<linear_internal::RowVector<T>> db(dbias, out);
    for (int64_t r = 0; r < n; ++r) db += dym.row(r);
  }
  if (dx != nullptr) {
    dx->Resize(x.shape);
    Eigen::Map<RowMatrix<T>>(dx->ptr(), n, in).noalias() = dym * wm;
  }
}

}  // namespace eigen_backend
}  // namespace moco

#endif  // BACKENDS_EIGEN_LINEAR_H_
