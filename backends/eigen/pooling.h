// Max pooling (torchvision's stem: 3x3, stride 2, padding 1) and global average pooling, NCHW,
// with hand-written backward passes.
//
//   MaxPoolForward(x, /*kernel=*/3, /*stride=*/2, /*padding=*/1, &y, &argmax);
//   MaxPoolBackward(x.shape, argmax, dy, &dx);
//   GlobalAvgPoolForward(y, &pooled);  // (N, C)
#ifndef BACKENDS_EIGEN_POOLING_H_
#define BACKENDS_EIGEN_POOLING_H_

#include <cstdint>
#include <limits>
#include <vector>

#include "backends/eigen/blob.h"
#include "glog/logging.h"

namespace moco {
namespace eigen_backend {

// y (N, C, Ho, Wo) = max over each window; padding is -inf (never selected). argmax (nullable)
// receives, per output, the index of the selected input within its (H, W) plane: the first
// maximum in row-major window order, as torch's CPU kernel.
template <typename T>
void MaxPoolForward(const Blob<T>& x, int64_t kernel, int64_t stride, int64_t padding, Blob<T>* y,
                    std::vector<int32_t>* argmax) {
  CHECK_EQ(x.rank(), 4);
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
  const int64_t ho = (h + 2 * padding - kernel) / stride + 1;
  const int64_t wo = (w + 2 * padding - kernel) / stride + 1;
  y->Resize({n, c, ho, wo});
  if (argmax != nullptr) argmax->resize(static_cast<size_t>(y->numel()));
#pragma omp parallel for schedule(static) if (x.numel() > kMinParallelWork)
  for (int64_t plane = 0; plane < n * c; ++plane) {
    const T* xp = x.ptr() + plane * h * w;
    T* yp = y->ptr() + plane * ho * wo;
    for (int64_t oh = 0; oh < ho; ++oh) {
      for (int64_t ow = 0; ow < wo; ++ow) {
        T best = -std::numeric_limits<T>::infinity();
        int64_t best_index = -1;
        for (int64_t ki = 0; ki < kernel; ++ki) {
          const int64_t ih = oh * stride - padding + ki;
          if (ih < 0 || ih >= h) continue;
          for (int64_t kj = 0; kj < kernel; ++kj) {
            const int64_t iw = ow * stride - padding + kj;
            if (iw < 0 || iw >= w) continue;
            const T v = xp[ih * w + iw];
            if (v > best || best_index < 0) {
              best = v;
              best_index = ih * w + iw;
            }
          }
        }
        yp[oh * wo + ow] = best;
        if (argmax != nullptr) {
          (*argmax)[static_cast<size_t>(plane * ho * wo + oh * wo + ow)] =
              static_cast<int32_t>(best_index);
        }
      }
    }
  }
}

// dx (x_shape, overwritten) = dy routed to the argmax of each window (summed where windows
// overlap).
template <typename T>
void MaxPoolBackward(const std::vector<int64_t>& x_shape, const std::vector<int32_t>& argmax,
                     const Blob<T>& dy, Blob<T>* dx) {
  dx->Resize(x_shape);
  dx->SetZero();
  const int64_t planes = x_shape[0] * x_shape[1], hw = x_shape[2] * x_shape[3];
  const int64_t out_hw = dy.dim(2) * dy.dim(3);
  CHECK_EQ(static_cast<int64_t>(argmax.size()), planes * out_hw);
#pragma omp parallel for schedule(static) if (dx->numel() > kMinParallelWork)
  for (int64_t plane = 0; plane < planes; ++plane) {
    T* dxp = dx->ptr() + plane * hw;
    const T* dyp = dy.ptr() + plane * out_hw;
    const int32_t* ap = argmax.data() + plane * out_hw;
    for (int64_t o = 0; o < out_hw; ++o) dxp[ap[o]] += dyp[o];
  }
}

// y (N, C) = mean of x (N, C, H, W) over H and W.
template <typename T>
void GlobalAvgPoolForward(const Blob<T>& x, Blob<T>* y) {
  CHECK_EQ(x.rank(), 4);
  const int64_t planes = x.dim(0) * x.dim(1), hw = x.dim(2) * x.dim(3);
  y->Resize({x.dim(0), x.dim(1)});
#pragma omp parallel for schedule(static) if (x.numel() > kMinParallelWork)
  for (int64_t plane = 0; plane < planes; ++plane) {
    const T* xp = x.ptr() + plane * hw;
    double sum = 0;
    for (int64_t j = 0; j < hw; ++j) sum += xp[j];
    y->ptr()[plane] = static_cast<T>(sum / static_cast<double>(hw));
  }
}

// dx (x_shape, overwritten) = dy / (H * W) broadcast over each plane.
template <typename T>
void GlobalAvgPoolBackward(const std::vector<int64_t>& x_shape, const Blob<T>& dy, Blob<T>* dx) {
  dx->Resize(x_shape);
  const int64_t planes = x_shape[0] * x_shape[1], hw = x_shape[2] * x_shape[3];
  CHECK_EQ(dy.numel(), planes);
  const T inv = T(1) / static_cast<T>(hw);
#pragma omp parallel for schedule(static) if (dx->numel() > kMinParallelWork)
  for (int64_t plane = 0; plane < planes; ++plane) {
    const T g = dy.ptr()[plane] * inv;
    T* dxp = dx->ptr() + plane * hw;
    for (int64_t j = 0; j < hw; ++j) dxp[j] = g;
  }
}

}  // namespace eigen_backend
}  // namespace moco

#endif  // BACKENDS_EIGEN_POOLING_H_
