#include "backends/eigen/adamw.h"

#include "gtest/gtest.h"

namespace moco {
namespace eigen_backend {
namespace {

TEST(AdamWTest, TwoStepsMatchHandComputation) {
  // beta1 0.5, beta2 0.75, eps 0.5 (large, to pin down where it is added), wd 0.1.
  // step 1 (t = 1), lr 0.1, grad 0.5:
  //   p = 1 * (1 - 0.01) = 0.99;  m = 0.5 * 0.5 = 0.25;  v = 0.25 * 0.25 = 0.0625;
  //   m / (1 - 0.5) = 0.5;  sqrt(v) / sqrt(1 - 0.75) = 0.25 / 0.5 = 0.5;  denom = 0.5 + 0.5 = 1;
  //   p = 0.99 - 0.1 * 0.5 / 1 = 0.94.
  //   (eps added before the bias correction would give denom (0.25 + 0.5) / 0.5 = 1.5.)
  // step 2 (t = 2), lr 0.2, grad -0.5:
  //   p = 0.94 * (1 - 0.02) = 0.9212;  m = 0.125 - 0.25 = -0.125;
  //   v = 0.75 * 0.0625 + 0.25 * 0.25 = 0.109375;
  //   m / (1 - 0.25) = -1/6;  sqrt(v / (1 - 0.5625)) = sqrt(0.25) = 0.5;  denom = 1;
  //   p = 0.9212 + 0.2 / 6 = 0.9212 + 1/30.
  double p = 1, g = 0.5, m = 0, v = 0;
  AdamWUpdate(&p, &g, &m, &v, 1, /*step=*/1, 0.1, 0.5, 0.75, 0.5, 0.1);
  EXPECT_NEAR(m, 0.25, 1e-15);
  EXPECT_NEAR(v, 0.0625, 1e-15);
  EXPECT_NEAR(p, 0.94, 1e-15);
  g = -0.5;
  AdamWUpdate(&p, &g, &m, &v, 1, /*step=*/2, 0.2, 0.5, 0.75, 0.5, 0.1);
  EXPECT_NEAR(m, -0.125, 1e-15);
  EXPECT_NEAR(v, 0.109375, 1e-15);
  EXPECT_NEAR(p, 0.9212 + 1.0 / 30, 1e-15);
}

TEST(AdamWTest, FirstStepMovesEachElementByAboutLr) {
  // With torch's defaults the bias-corrected first step is lr * g / (|g| + eps): ~lr sign(g);
  // a zero gradient leaves the element to weight decay alone.
  float p[3] = {1, 1, 1}, g[3] = {3, -1e-3f, 0}, m[3] = {}, v[3] = {};
  AdamWUpdate(p, g, m, v, 3, 1, 1e-2, 0.9, 0.999, 1e-8, 0.0);
  EXPECT_NEAR(p[0], 0.99, 1e-6);
  EXPECT_NEAR(p[1], 1.01, 1e-6);
  EXPECT_EQ(p[2], 1.0f);
}

}  // namespace
}  // namespace eigen_backend
}  // namespace moco
