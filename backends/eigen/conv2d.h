// 2-D convolution (cross-correlation, as torch.nn.Conv2d with groups = 1 and dilation = 1) with
// a hand-written backward pass. Layout NCHW; weight (out_channels, in_channels, kh, kw).
//
// Implementation: per sample, im2col into a (C*kh*kw, Ho*Wo) matrix (skipped for 1x1 stride-1
// unpadded kernels, whose input already is that matrix) and one Eigen GEMM. Samples are spread
// over OpenMP threads; each thread runs single-threaded GEMMs and keeps its own weight-gradient
// accumulator, summed in thread order afterwards, so results do not depend on scheduling.
//
//   Conv2dGeometry g{/*in=*/16, /*out=*/32, /*kh=*/3, /*kw=*/3, /*stride=*/2, /*padding=*/1};
//   Conv2dForward(g, x, w.data(), /*bias=*/nullptr, &y);
//   Conv2dBackward(g, x, w.data(), dy, &dx, dw.data(), /*dbias=*/nullptr);
#ifndef BACKENDS_EIGEN_CONV2D_H_
#define BACKENDS_EIGEN_CONV2D_H_

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "Eigen/Core"
#include "backends/eigen/blob.h"
#include "glog/logging.h"

namespace moco {
namespace eigen_backend {

struct Conv2dGeometry {
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t kernel_h = 1;
  int64_t kernel_w = 1;
  int64_t stride = 1;
  int64_t padding = 0;

  int64_t OutH(int64_t h) const { return (h + 2 * padding - kernel_h) / stride + 1; }
  int64_t OutW(int64_t w) const { return (w + 2 * padding - kernel_w) / stride + 1; }
  int64_t PatchSize() const { return in_channels * kernel_h * kernel_w; }
  int64_t WeightSize() const { return out_channels * PatchSize(); }
  bool IsPointwise() const {
    return kernel_h == 1 && kernel_w == 1 && stride == 1 && padding == 0;
  }
};

namespace conv_internal {

template <typename T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// A "same" stride-1 convolution (wo == w): every (channel, tap) plane of col is the input plane
// shifted by one constant offset, so it is copied (and, backward, accumulated) as one contiguous
// run instead of row by row; only the taps that fall off the image need fixing up.
struct ShiftedPlane {
  int64_t offset;  // src index = dst index + offset
  int64_t lo, hi;  // valid output columns [lo, hi)
  int64_t oh0, oh1;  // valid output rows [oh0, oh1)
  int64_t first, last;  // the contiguous dst run [first, last) spans rows oh0..oh1-1
};

inline bool IsSameStride1(const Conv2dGeometry& g, int64_t h, int64_t w, int64_t ho,
                          int64_t wo) {
  return g.stride == 1 && wo == w && ho == h;
}

inline ShiftedPlane PlaneShift(const Conv2dGeometry& g, int64_t h, int64_t w, int64_t ki,
                               int64_t kj) {
  ShiftedPlane s;
  const int64_t row_shift = ki - g.padding, col_shift = kj - g.padding;
  s.offset = row_shift * w + col_shift;
  s.lo = std::max<int64_t>(0, -col_shift);
  s.hi = std::min<int64_t>(w, w - col_shift);
  s.oh0 = std::max<int64_t>(0, -row_shift);
  s.oh1 = std::min<int64_t>(h, h - row_shift);
  const bool any = s.oh1 > s.oh0 && s.hi > s.lo;
  s.first = any ? s.oh0 * w + s.lo : 0;
  s.last = any ? (s.oh1 - 1) * w + s.hi : 0;
  return s;
}

// Zeroes the columns outside [lo, hi) of the valid rows of one (ho, wo) plane: the taps that a
// contiguous shifted run wraps into the neighbouring row.
template <typename T>
void ZeroWrappedColumns(const ShiftedPlane& s, int64_t wo, T* plane) {
  if (s.first >= s.last) return;
  for (int64_t oh = s.oh0; oh < s.oh1; ++oh) {
    T* row = plane + oh * wo;
    for (int64_t ow = 0; ow < s.lo; ++ow) row[ow] = T(0);
    for (int64_t ow = s.hi; ow < wo; ++ow) row[ow] = T(0);
  }
}

// col (C*kh*kw, ho*wo) from one sample x (C, h, w); out-of-image taps are zero.
template <typename T>
void Im2Col(const Conv2dGeometry& g, const T* x, int64_t h, int64_t w, int64_t ho, int64_t wo,
            T* col) {
  const int64_t plane = ho * wo;
  const bool same = IsSameStride1(g, h, w, ho, wo);
  for (int64_t c = 0; c < g.in_channels; ++c) {
    const T* xc = x + c * h * w;
    for (int64_t ki = 0; ki < g.kernel_h; ++ki) {
      for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
        T* dst = col + ((c * g.kernel_h + ki) * g.kernel_w + kj) * plane;
        if (same) {
          const ShiftedPlane s = PlaneShift(g, h, w, ki, kj);
          // One copy of the valid run (it reads only inside the plane), zeros around it, then
          // the columns that wrapped into the neighbouring row are zeroed.
          std::fill(dst, dst + s.first, T(0));
          std::copy(xc + s.first + s.offset, xc + s.last + s.offset, dst + s.first);
          std::fill(dst + s.last, dst + plane, T(0));
          ZeroWrappedColumns(s, wo, dst);
          continue;
        }
        for (int64_t oh = 0; oh < ho; ++oh) {
          const int64_t ih = oh * g.stride - g.padding + ki;
          T* row = dst + oh * wo;
          if (ih < 0 || ih >= h) {
            std::fill(row, row + wo, T(0));
            continue;
          }
          const T* src = xc + ih * w;
          if (g.stride == 1) {
            // iw = ow - padding + kj: a contiguous run with zero borders.
            const int64_t shift = kj - g.padding;
            const int64_t lo = std::max<int64_t>(0, -shift);
            const int64_t hi = std::min<int64_t>(wo, w - shift);
            // std::fill / std::copy: a vectorized memset / memcpy (an element loop was not
            // vectorized and was the backend's top hotspot).
            std::fill(row, row + std::min(lo, wo), T(0));
            if (hi > lo) std::copy(src + lo + shift, src + hi + shift, row + lo);
            std::fill(row + std::max(hi, lo), row + wo, T(0));
          } else {
            for (int64_t ow = 0; ow < wo; ++ow) {
              const int64_t iw = ow * g.stride - g.padding + kj;
              row[ow] = (iw >= 0 && iw < w) ? src[iw] : T(0);
            }
          }
        }
      }
    }
  }
}

// dx (C, h, w) += scatter of dcol (C*kh*kw, ho*wo); the adjoint of Im2Col. dcol is scratch: its
// out-of-image taps may be overwritten with zeros. Each dx element receives its taps in the same
// (ki, kj) order on every path, so the result does not depend on which path ran.
template <typename T>
void Col2ImAdd(const Conv2dGeometry& g, T* dcol, int64_t h, int64_t w, int64_t ho, int64_t wo,
               T* dx) {
  using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;
  const int64_t plane = ho * wo;
  const bool same = IsSameStride1(g, h, w, ho, wo);
  for (int64_t c = 0; c < g.in_channels; ++c) {
    T* dxc = dx + c * h * w;
    for (int64_t ki = 0; ki < g.kernel_h; ++ki) {
      for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
        T* src = dcol + ((c * g.kernel_h + ki) * g.kernel_w + kj) * plane;
        if (same) {
          const ShiftedPlane s = PlaneShift(g, h, w, ki, kj);
          if (s.first >= s.last) continue;
          // Zero the taps that would wrap into the neighbouring row (x + 0 == x exactly), then
          // accumulate the whole run at once.
          ZeroWrappedColumns(s, wo, src);
          const int64_t len = s.last - s.first;
          Eigen::Map<Vector>(dxc + s.first + s.offset, len) +=
              Eigen::Map<const Vector>(src + s.first, len);
          continue;
        }
        for (int64_t oh = 0; oh < ho; ++oh) {
          const int64_t ih = oh * g.stride - g.padding + ki;
          if (ih < 0 || ih >= h) continue;
          const T* row = src + oh * wo;
          T* dst = dxc + ih * w;
          // The taps with 0 <= iw = ow * stride + first < w are the range ow in [lo, hi).
          const int64_t first = kj - g.padding;
          const int64_t lo = first >= 0 ? 0 : (-first + g.stride - 1) / g.stride;
          const int64_t hi =
              w - first <= 0 ? 0 : std::min<int64_t>(wo, (w - first - 1) / g.stride + 1);
          if (g.stride == 1) {
            const int64_t len = std::max<int64_t>(hi - lo, 0);
            Eigen::Map<Vector>(dst + lo + first, len) += Eigen::Map<const Vector>(row + lo, len);
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow * g.stride + first] += row[ow];
          }
        }
      }
    }
  }
}

}  // namespace conv_internal

// y = conv(x, weight) + bias. x: (N, in_channels, H, W). y is resized to (N, out, Ho, Wo).
// bias may be null.
template <typename T>
void Conv2dForward(const Conv2dGeometry& g, const Blob<T>& x, const T* weight,
                   typename NonDeduced<const T*>::type bias, Blob<T>* y) {
  using conv_internal::RowMatrix;
  CHECK_EQ(x.rank(), 4);
  CHECK_EQ(x.dim(1), g.in_channels);
  const int64_t n = x.dim(0), h = x.dim(2), w = x.dim(3);
  const int64_t ho = g.OutH(h), wo = g.OutW(w);
  CHECK_GT(ho, 0);
  CHECK_GT(wo, 0);
  y->Resize({n, g.out_channels, ho, wo});
  const int64_t k = g.PatchSize(), p = ho * wo;
  const bool pointwise = g.IsPointwise();
  const bool parallel = n > 1 && n * g.out_channels * k * p > kMinParallelWork;
#pragma omp parallel if (parallel)
  {
    std::vector<T> col(pointwise ? 0 : static_cast<size_t>(k * p));
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const T* xi = x.ptr() + i * g.in_channels * h * w;
      if (!pointwise) conv_internal::Im2Col(g, xi, h, w, ho, wo, col.data());
      Eigen::Map<const RowMatrix<T>> c(pointwise ? xi : col.data(), k, p);
      Eigen::Map<const RowMatrix<T>> wm(weight, g.out_channels, k);
      Eigen::Map<RowMatrix<T>> yi(y->ptr() + i * g.out_channels * p, g.out_channels, p);
      yi.noalias() = wm * c;
      if (bias != nullptr) {
        yi.colwise() += Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>(bias, g.out_channels);
      }
    }
  }
}

// Backward of Conv2dForward given dy = d(loss)/dy, shape (N, out, Ho, Wo).
// dx (nullable) is resized to x's shape and overwritten; dweight (WeightSize()) and dbias
// (out_channels, nullable) are accumulated into.
template <typename T>
void Conv2dBackward(const Conv2dGeometry& g, const Blob<T>& x, const T* weight, const Blob<T>& dy,
                    typename NonDeduced<Blob<T>*>::type dx, T* dweight,
                    typename NonDeduced<T*>::type dbias) {
  using conv_internal::RowMatrix;
  const int64_t n = x.dim(0), h = x.dim(2), w = x.dim(3);
  const int64_t ho = g.OutH(h), wo = g.OutW(w);
  CHECK_EQ(dy.rank(), 4);
  CHECK_EQ(dy.dim(0), n);
  CHECK_EQ(dy.dim(1), g.out_channels);
  CHECK_EQ(dy.dim(2), ho);
  CHECK_EQ(dy.dim(3), wo);
  const int64_t k = g.PatchSize(), p = ho * wo, cout = g.out_channels;
  const bool pointwise = g.IsPointwise();
  if (dx != nullptr) {
    dx->Resize(x.shape);
    if (!pointwise) dx->SetZero();
  }
  const bool parallel = n > 1 && n * cout * k * p > kMinParallelWork;
  const int threads = parallel ? omp_get_max_threads() : 1;
  std::vector<RowMatrix<T>> dw_parts(static_cast<size_t>(threads));
  std::vector<Eigen::Matrix<T, Eigen::Dynamic, 1>> db_parts(static_cast<size_t>(threads));
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    RowMatrix<T>& dw = dw_parts[static_cast<size_t>(t)];
    dw.setZero(cout, k);
    Eigen::Matrix<T, Eigen::Dynamic, 1>& db = db_parts[static_cast<size_t>(t)];
    db.setZero(cout);
    std::vector<T> col(pointwise ? 0 : static_cast<size_t>(k * p));
    std::vector<T> dcol(pointwise || dx == nullptr ? 0 : static_cast<size_t>(k * p));
    Eigen::Map<const RowMatrix<T>> wm(weight, cout, k);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const T* xi = x.ptr() + i * g.in_channels * h * w;
      if (!pointwise) conv_internal::Im2Col(g, xi, h, w, ho, wo, col.data());
      Eigen::Map<const RowMatrix<T>> c(pointwise ? xi : col.data(), k, p);
      Eigen::Map<const RowMatrix<T>> dyi(dy.ptr() + i * cout * p, cout, p);
      dw.noalias() += dyi * c.transpose();
      if (dbias != nullptr) {
        // In index order, as the linear layer's bias (linear.h): a vectorized reduction's
        // rounding may depend on the buffer's address.
        for (int64_t c = 0; c < cout; ++c) {
          const T* row = dyi.data() + c * p;
          T s = 0;
          for (int64_t j = 0; j < p; ++j) s += row[j];
          db[c] += s;
        }
      }
      if (dx != nullptr) {
        T* dxi = dx->ptr() + i * g.in_channels * h * w;
        if (pointwise) {
          Eigen::Map<RowMatrix<T>>(dxi, k, p).noalias() = wm.transpose() * dyi;
        } else {
          Eigen::Map<RowMatrix<T>> dc(dcol.data(), k, p);
          dc.noalias() = wm.transpose() * dyi;
          conv_internal::Col2ImAdd(g, dcol.data(), h, w, ho, wo, dxi);
        }
      }
    }
  }
  Eigen::Map<RowMatrix<T>> dwm(dweight, cout, k);
  for (const auto& part : dw_parts) dwm += part;
  if (dbias != nullptr) {
    Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>> dbm(dbias, cout);
    for (const auto& part : db_parts) dbm += part;
  }
}

}  // namespace eigen_backend
}  // namespace moco

#endif  // BACKENDS_EIGEN_CONV2D_H_
