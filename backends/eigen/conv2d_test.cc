#include "backends/eigen/conv2d.h"

#include <omp.h>

#include <tuple>
#include <vector>

#include "backends/eigen/grad_check.h"
#include "gtest/gtest.h"

namespace moco {
namespace eigen_backend {
namespace {

// Direct 7-loop convolution: the independent reference for the forward pass.
Blob<double> NaiveConv(const Conv2dGeometry& g, const Blob<double>& x, const std::vector<double>& w,
                       const std::vector<double>* b) {
  const int64_t n = x.dim(0), h = x.dim(2), wd = x.dim(3);
  const int64_t ho = g.OutH(h), wo = g.OutW(wd);
  Blob<double> y({n, g.out_channels, ho, wo});
  for (int64_t i = 0; i < n; ++i)
    for (int64_t o = 0; o < g.out_channels; ++o)
      for (int64_t oh = 0; oh < ho; ++oh)
        for (int64_t ow = 0; ow < wo; ++ow) {
          double s = b ? (*b)[o] : 0.0;
          for (int64_t c = 0; c < g.in_channels; ++c)
            for (int64_t ki = 0; ki < g.kernel_h; ++ki)
              for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
                const int64_t ih = oh * g.stride - g.padding + ki;
                const int64_t iw = ow * g.stride - g.padding + kj;
                if (ih < 0 || ih >= h || iw < 0 || iw >= wd) continue;
                s += x.data[((i * g.in_channels + c) * h + ih) * wd + iw] *
                     w[((o * g.in_channels + c) * g.kernel_h + ki) * g.kernel_w + kj];
              }
          y.data[((i * g.out_channels + o) * ho + oh) * wo + ow] = s;
        }
  return y;
}

struct ConvCase {
  Conv2dGeometry g;
  int64_t n, h, w;
  bool bias;
};

class Conv2dTest : public ::testing::TestWithParam<ConvCase> {};

TEST_P(Conv2dTest, ForwardMatchesDirectLoopsAndBackwardMatchesFiniteDifferences) {
  const ConvCase& tc = GetParam();
  const Conv2dGeometry& g = tc.g;
  Blob<double> x = RandomBlob({tc.n, g.in_channels, tc.h, tc.w}, 1);
  std::vector<double> w = RandomBlob({g.WeightSize()}, 2).data;
  std::vector<double> b = RandomBlob({g.out_channels}, 3).data;
  const std::vector<double>* bias = tc.bias ? &b : nullptr;

  Blob<double> y;
  Conv2dForward(g, x, w.data(), tc.bias ? b.data() : nullptr, &y);
  Blob<double> ref = NaiveConv(g, x, w, bias);
  ASSERT_EQ(y.shape, ref.shape);
  EXPECT_TRUE(AllClose(y.data, ref.data, 1e-12, 1e-12));

  // loss = sum(r .* y) so that dL/dy = r.
  Blob<double> r = RandomBlob(y.shape, 4);
  auto loss = [&] {
    Blob<double> out;
    Conv2dForward(g, x, w.data(), tc.bias ? b.data() : nullptr, &out);
    return Dot(out.data, r.data);
  };
  Blob<double> dx;
  std::vector<double> dw(w.size(), 0.0), db(b.size(), 0.0);
  Conv2dBackward(g, x, w.data(), r, &dx, dw.data(), tc.bias ? db.data() : nullptr);
  EXPECT_TRUE(AllClose(dx.data, NumericGradient(loss, &x.data), 1e-7, 1e-6)) << "dx";
  EXPECT_TRUE(AllClose(dw, NumericGradient(loss, &w), 1e-7, 1e-6)) << "dw";
  if (tc.bias) {
    EXPECT_TRUE(AllClose(db, NumericGradient(loss, &b), 1e-7, 1e-6)) << "db";
  }

  // Gradients accumulate: a second backward doubles dw.
  std::vector<double> dw2 = dw;
  Conv2dBackward(g, x, w.data(), r, nullptr, dw2.data(), nullptr);
  for (size_t i = 0; i < dw.size(); ++i) EXPECT_NEAR(dw2[i], 2 * dw[i], 1e-12);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, Conv2dTest,
    ::testing::Values(
        ConvCase{{3, 4, 3, 3, 1, 1}, 2, 7, 5, false},   // 3x3 same, odd sizes
        ConvCase{{2, 3, 5, 5, 1, 2}, 2, 6, 7, true},    // 5x5 same: two wrapped columns
        ConvCase{{2, 2, 5, 5, 1, 2}, 1, 1, 2, false},   // same, image smaller than kernel
        ConvCase{{3, 5, 3, 3, 2, 1}, 3, 7, 9, false},   // 3x3 stride 2, odd sizes
        ConvCase{{4, 6, 1, 1, 1, 0}, 2, 5, 3, false},   // pointwise fast path
        ConvCase{{4, 6, 1, 1, 2, 0}, 2, 7, 6, false},   // downsample 1x1 stride 2
        ConvCase{{2, 3, 7, 7, 2, 3}, 2, 11, 9, false},  // ImageNet stem 7x7 s2 p3
        ConvCase{{3, 2, 2, 3, 1, 0}, 2, 5, 6, true},    // non-square kernel, bias
        ConvCase{{1, 3, 3, 3, 1, 2}, 1, 3, 4, true}));  // padding > kernel / 2

TEST(Conv2dThreadsTest, ThreadedMatchesSerial) {
  // Large enough to take the OpenMP path (per-thread weight-gradient partials).
  const Conv2dGeometry g{8, 16, 3, 3, 1, 1};
  Blob<double> x = RandomBlob({6, 8, 12, 12}, 5);
  std::vector<double> w = RandomBlob({g.WeightSize()}, 6).data;
  Blob<double> dy = RandomBlob({6, 16, 12, 12}, 7);
  Blob<double> y[2], dx[2];
  std::vector<double> dw[2];
  for (int t = 0; t < 2; ++t) {
    omp_set_num_threads(t == 0 ? 1 : 2);
    Conv2dForward(g, x, w.data(), nullptr, &y[t]);
    dw[t].assign(w.size(), 0.0);
    Conv2dBackward(g, x, w.data(), dy, &dx[t], dw[t].data(), nullptr);
  }
  EXPECT_TRUE(AllClose(y[1].data, y[0].data, 1e-12, 1e-12));
  EXPECT_TRUE(AllClose(dx[1].data, dx[0].data, 1e-12, 1e-12));
  EXPECT_TRUE(AllClose(dw[1], dw[0], 1e-12, 1e-12));
}

}  // namespace
}  // namespace eigen_backend
}  // namespace moco
