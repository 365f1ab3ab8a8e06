#include "backends/eigen/sgd.h"

#include "gtest/gtest.h"

namespace moco {
namespace eigen_backend {
namespace {

TEST(SgdTest, TwoStepsMatchHandComputation) {
  // p = 1, grad = 0.5, wd = 0.1, momentum 0.9, lr 0.1:
  // step 1: g = 0.5 + 0.1 * 1 = 0.6; buf = 0.6; p = 1 - 0.06 = 0.94
  // step 2: g = 0.5 + 0.094 = 0.594; buf = 0.54 + 0.594 = 1.134; p = 0.94 - 0.1134 = 0.8266
  double p = 1, g = 0.5, buf = 123;
  SgdUpdate(&p, &g, &buf, 1, /*first_step=*/true, 0.1, 0.9, 0.1);
  EXPECT_NEAR(buf, 0.6, 1e-15);
  EXPECT_NEAR(p, 0.94, 1e-15);
  SgdUpdate(&p, &g, &buf, 1, /*first_step=*/false, 0.1, 0.9, 0.1);
  EXPECT_NEAR(buf, 1.134, 1e-15);
  EXPECT_NEAR(p, 0.8266, 1e-15);
}

TEST(SgdTest, NoMomentumIsPlainGradientDescent) {
  double p[2] = {1, -2}, g[2] = {0.5, 0.25};
  SgdUpdate<double>(p, g, nullptr, 2, true, 0.5, 0.0, 0.0);
  EXPECT_DOUBLE_EQ(p[0], 0.75);
  EXPECT_DOUBLE_EQ(p[1], -2.125);
}

TEST(MomentumUpdateTest, IsExponentialMovingAverage) {
  double dst[2] = {1, -1}, src[2] = {3, 1};
  MomentumUpdate(dst, src, 2, 0.75);
  EXPECT_DOUBLE_EQ(dst[0], 1.5);   // 0.75 * 1 + 0.25 * 3
  EXPECT_DOUBLE_EQ(dst[1], -0.5);  // -0.75 + 0.25
}

}  // namespace
}  // namespace eigen_backend
}  // namespace moco
