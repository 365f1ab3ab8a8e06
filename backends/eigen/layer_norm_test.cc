#include "backends/eigen/layer_norm.h"

#include <cmath>
#include <vector>

#include "backends/eigen/grad_check.h"
#include "gtest/gtest.h"

namespace moco {
namespace eigen_backend {
namespace {

constexpr double kEps = 1e-6;

TEST(LayerNormTest, RowsAreStandardizedThenScaledAndShifted) {
  Blob<double> x = RandomBlob({2, 3, 8}, 91, -2.0, 3.0);
  std::vector<double> gamma(8, 1.0), beta(8, 0.0);
  Blob<double> y;
  LayerNormCache<double> cache;
  LayerNormForward(x, gamma.data(), beta.data(), kEps, &y, &cache);
  ASSERT_EQ(y.shape, x.shape);
  for (int r = 0; r < 6; ++r) {
    double mean = 0, sq = 0;
    for (int j = 0; j < 8; ++j) mean += y.data[r * 8 + j] / 8;
    for (int j = 0; j < 8; ++j) sq += (y.data[r * 8 + j] - mean) * (y.data[r * 8 + j] - mean) / 8;
    EXPECT_NEAR(mean, 0.0, 1e-12);
    EXPECT_NEAR(sq, 1.0, 1e-5);  // biased variance, plus eps in the denominator
  }
  // gamma and beta apply per feature.
  gamma = RandomBlob({8}, 92).data;
  beta = RandomBlob({8}, 93).data;
  Blob<double> z;
  LayerNormForward(x, gamma.data(), beta.data(), kEps, &z, &cache);
  for (int r = 0; r < 6; ++r) {
    for (int j = 0; j < 8; ++j) {
      EXPECT_NEAR(z.data[r * 8 + j], y.data[r * 8 + j] * gamma[j] + beta[j], 1e-12);
    }
  }
}

TEST(LayerNormTest, BackwardMatchesFiniteDifferencesAndAccumulates) {
  Blob<double> x = RandomBlob({3, 2, 6}, 94);
  Blob<double> gamma = RandomBlob({6}, 95, 0.5, 1.5), beta = RandomBlob({6}, 96);
  Blob<double> r = RandomBlob(x.shape, 97);
  auto loss = [&] {
    Blob<double> y;
    LayerNormCache<double> c;
    LayerNormForward(x, gamma.ptr(), beta.ptr(), kEps, &y, &c);
    return Dot(y.data, r.data);
  };
  Blob<double> y, dx;
  LayerNormCache<double> cache;
  LayerNormForward(x, gamma.ptr(), beta.ptr(), kEps, &y, &cache);
  std::vector<double> dgamma(6, 1.0), dbeta(6, 1.0);  // accumulated into
  LayerNormBackward(x, gamma.ptr(), cache, r, &dx, dgamma.data(), dbeta.data());
  EXPECT_TRUE(AllClose(dx.data, NumericGradient(loss, &x.data), 1e-8, 1e-6));
  std::vector<double> num_gamma = NumericGradient(loss, &gamma.data);
  std::vector<double> num_beta = NumericGradient(loss, &beta.data);
  for (int j = 0; j < 6; ++j) {
    num_gamma[j] += 1.0;
    num_beta[j] += 1.0;
  }
  EXPECT_TRUE(AllClose(dgamma, num_gamma, 1e-8, 1e-6));
  EXPECT_TRUE(AllClose(dbeta, num_beta, 1e-8, 1e-6));
}

}  // namespace
}  // namespace eigen_backend
}  // namespace moco
