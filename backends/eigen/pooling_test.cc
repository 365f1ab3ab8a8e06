#include "backends/eigen/pooling.h"

#include <algorithm>
#include <vector>

#include "backends/eigen/grad_check.h"
#include "gtest/gtest.h"

namespace moco {
namespace eigen_backend {
namespace {

class MaxPoolTest : public ::testing::TestWithParam<std::vector<int64_t>> {};

TEST_P(MaxPoolTest, ForwardIsWindowMaxAndBackwardMatchesFiniteDifferences) {
  Blob<double> x = RandomBlob(GetParam(), 51);
  const int64_t h = x.dim(2), w = x.dim(3);
  Blob<double> y;
  std::vector<int32_t> argmax;
  MaxPoolForward(x, 3, 2, 1, &y, &argmax);
  const int64_t ho = (h - 1) / 2 + 1, wo = (w - 1) / 2 + 1;  // (h + 2 - 3) / 2 + 1
  ASSERT_EQ(y.shape, (std::vector<int64_t>{x.dim(0), x.dim(1), ho, wo}));
  for (int64_t p = 0; p < x.dim(0) * x.dim(1); ++p)
    for (int64_t oh = 0; oh < ho; ++oh)
      for (int64_t ow = 0; ow < wo; ++ow) {
        double best = -1e300;
        for (int64_t ih = std::max<int64_t>(0, 2 * oh - 1); ih <= std::min(h - 1, 2 * oh + 1); ++ih)
          for (int64_t iw = std::max<int64_t>(0, 2 * ow - 1); iw <= std::min(w - 1, 2 * ow + 1);
               ++iw)
            best = std::max(best, x.data[(p * h + ih) * w + iw]);
        EXPECT_EQ(y.data[(p * ho + oh) * wo + ow], best);
      }
  Blob<double> r = RandomBlob(y.shape, 52);
  auto loss = [&] {
    Blob<double> out;
    MaxPoolForward(x, 3, 2, 1, &out, nullptr);
    return Dot(out.data, r.data);
  };
  Blob<double> dx;
  MaxPoolBackward(x.shape, argmax, r, &dx);
  EXPECT_TRUE(AllClose(dx.data, NumericGradient(loss, &x.data), 1e-7, 1e-6));
}

INSTANTIATE_TEST_SUITE_P(Shapes, MaxPoolTest,
                         ::testing::Values(std::vector<int64_t>{2, 3, 8, 8},
                                           std::vector<int64_t>{1, 2, 7, 9},
                                           std::vector<int64_t>{2, 1, 5, 4},
                                           std::vector<int64_t>{1, 1, 1, 3}));

TEST(MaxPoolTest, TiesGoToTheFirstMaximumInWindowOrder) {
  Blob<double> x({1, 1, 2, 2});  // all zeros, as after a ReLU
  Blob<double> y, dy({1, 1, 1, 1}), dx;
  dy.data[0] = 1;
  std::vector<int32_t> argmax;
  MaxPoolForward(x, 3, 2, 1, &y, &argmax);
  ASSERT_EQ(argmax.size(), 1u);
  EXPECT_EQ(argmax[0], 0);
  MaxPoolBackward(x.shape, argmax, dy, &dx);
  EXPECT_EQ(dx.data, (std::vector<double>{1, 0, 0, 0}));
}

TEST(GlobalAvgPoolTest, ForwardIsPlaneMeanAndBackwardMatchesFiniteDifferences) {
  Blob<double> x = RandomBlob({3, 4, 5, 3}, 61);
  Blob<double> y;
  GlobalAvgPoolForward(x, &y);
  ASSERT_EQ(y.shape, (std::vector<int64_t>{3, 4}));
  for (int64_t p = 0; p < 12; ++p) {
    double s = 0;
    for (int64_t j = 0; j < 15; ++j) s += x.data[p * 15 + j];
    EXPECT_NEAR(y.data[p], s / 15, 1e-14);
  }
  Blob<double> r = RandomBlob(y.shape, 62);
  auto loss = [&] {
    Blob<double> out;
    GlobalAvgPoolForward(x, &out);
    return Dot(out.data, r.data);
  };
  Blob<double> dx;
  GlobalAvgPoolBackward(x.shape, r, &dx);
  EXPECT_TRUE(AllClose(dx.data, NumericGradient(loss, &x.data), 1e-8, 1e-6));
}

}  // namespace
}  // namespace eigen_backend
}  // namespace moco
