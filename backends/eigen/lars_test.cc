#include "backends/eigen/lars.h"

#include <cmath>

#include "gtest/gtest.h"

namespace moco {
namespace eigen_backend {
namespace {

constexpr double kLr = 2, kMomentum = 0.9, kWd = 0.1, kEta = 0.001;

TEST(LarsTest, MatrixParameterTwoStepsMatchHandComputation) {
  // p = [3, 4] (||p|| = 5), grad = [0.3, 0.4].
  // step 1: d = grad + 0.1 p = [0.6, 0.8], ||d|| = 1, q = 0.001 * 5 / 1 = 0.005,
  //   d = [0.003, 0.004] = mu;  p = p - 2 mu = [2.994, 3.992].
  // step 2: d = [0.3 + 0.2994, 0.4 + 0.3992] = 0.999 [0.6, 0.8], ||d|| = 0.999,
  //   ||p|| = 0.998 * 5 = 4.99, q d = 0.001 * 4.99 [0.6, 0.8] = [0.002994, 0.003992];
  //   mu = 0.9 [0.003, 0.004] + q d = [0.005694, 0.007592];
  //   p = [2.994 - 0.011388, 3.992 - 0.015184] = [2.982612, 3.976816].
  double p[2] = {3, 4}, g[2] = {0.3, 0.4}, mu[2] = {0, 0};
  LarsUpdate(p, g, mu, 2, /*adapt=*/true, kLr, kMomentum, kWd, kEta);
  EXPECT_NEAR(mu[0], 0.003, 1e-15);
  EXPECT_NEAR(mu[1], 0.004, 1e-15);
  EXPECT_NEAR(p[0], 2.994, 1e-14);
  EXPECT_NEAR(p[1], 3.992, 1e-14);
  LarsUpdate(p, g, mu, 2, /*adapt=*/true, kLr, kMomentum, kWd, kEta);
  EXPECT_NEAR(mu[0], 0.005694, 1e-15);
  EXPECT_NEAR(mu[1], 0.007592, 1e-15);
  EXPECT_NEAR(p[0], 2.982612, 1e-14);
  EXPECT_NEAR(p[1], 3.976816, 1e-14);
}

TEST(LarsTest, VectorParameterIsPlainMomentumWithoutWeightDecay) {
  // adapt = false: d = grad. step 1: mu = [0.5, 0.25], p = [1 - 1, -2 - 0.5] = [0, -2.5].
  // step 2: mu = 0.9 mu + grad = [0.95, 0.475], p = [-1.9, -3.45].
  double p[2] = {1, -2}, g[2] = {0.5, 0.25}, mu[2] = {0, 0};
  LarsUpdate(p, g, mu, 2, /*adapt=*/false, kLr, kMomentum, kWd, kEta);
  EXPECT_NEAR(p[0], 0.0, 1e-15);
  EXPECT_NEAR(p[1], -2.5, 1e-15);
  LarsUpdate(p, g, mu, 2, /*adapt=*/false, kLr, kMomentum, kWd, kEta);
  EXPECT_NEAR(mu[0], 0.95, 1e-15);
  EXPECT_NEAR(mu[1], 0.475, 1e-15);
  EXPECT_NEAR(p[0], -1.9, 1e-15);
  EXPECT_NEAR(p[1], -3.45, 1e-15);
}

TEST(LarsTest, ZeroParameterNormFallsBackToTrustRatioOne) {
  // p = 0: ||p|| = 0, so q = 1 and d = grad + 0.1 * 0 = [1, 2] = mu; p = -2 mu = [-2, -4].
  double p[2] = {0, 0}, g[2] = {1, 2}, mu[2] = {0, 0};
  LarsUpdate(p, g, mu, 2, /*adapt=*/true, kLr, kMomentum, kWd, kEta);
  EXPECT_DOUBLE_EQ(mu[0], 1);
  EXPECT_DOUBLE_EQ(mu[1], 2);
  EXPECT_DOUBLE_EQ(p[0], -2);
  EXPECT_DOUBLE_EQ(p[1], -4);
}

TEST(LarsTest, ZeroUpdateNormFallsBackToTrustRatioOne) {
  // grad = -0.1 p exactly, so d = 0 and ||d|| = 0: q = 1 (not eta ||p|| / 0 = inf, which would
  // make 0 * inf = NaN); mu stays 0 and p is unchanged.
  double p[2] = {1, -2}, g[2] = {-0.1, 0.2}, mu[2] = {0, 0};
  LarsUpdate(p, g, mu, 2, /*adapt=*/true, kLr, kMomentum, kWd, kEta);
  EXPECT_EQ(mu[0], 0.0);
  EXPECT_EQ(mu[1], 0.0);
  EXPECT_EQ(p[0], 1.0);
  EXPECT_EQ(p[1], -2.0);
}

TEST(LarsTest, FloatMatchesDouble) {
  // The float32 instantiation (what the backend runs) on the first test's numbers.
  float p[2] = {3, 4}, g[2] = {0.3f, 0.4f}, mu[2] = {0, 0};
  for (int i = 0; i < 2; ++i) LarsUpdate(p, g, mu, 2, true, 2.0f, 0.9f, 0.1f, 0.001f);
  EXPECT_NEAR(p[0], 2.982612, 1e-6);
  EXPECT_NEAR(p[1], 3.976816, 1e-6);
  EXPECT_NEAR(mu[0], 0.005694, 1e-8);
}

}  // namespace
}  // namespace eigen_backend
}  // namespace moco
