#include "backends/eigen/batch_norm.h"

#include <cmath>
#include <vector>

#include "backends/eigen/grad_check.h"
#include "gtest/gtest.h"

namespace moco {
namespace eigen_backend {
namespace {

struct BnCase {
  std::vector<int64_t> shape;
  int splits;
};

class BatchNormTest : public ::testing::TestWithParam<BnCase> {};

int64_t Spatial(const std::vector<int64_t>& s) { return s.size() == 4 ? s[2] * s[3] : 1; }

TEST_P(BatchNormTest, TrainForwardAndRunningStatsMatchPerGroupFormulas) {
  const BnCase& tc = GetParam();
  const int64_t n = tc.shape[0], c = tc.shape[1], s = Spatial(tc.shape);
  Blob<double> x = RandomBlob(tc.shape, 11, -2, 3);
  std::vector<double> gamma = RandomBlob({c}, 12, 0.5, 1.5).data;
  std::vector<double> beta = RandomBlob({c}, 13).data;
  std::vector<double> rmean = RandomBlob({c}, 14).data, rvar = RandomBlob({c}, 15, 0.5, 2).data;
  const std::vector<double> rmean0 = rmean, rvar0 = rvar;
  Blob<double> y;
  BatchNormForward(x, gamma.data(), beta.data(), rmean.data(), rvar.data(),
                   {/*train=*/true, tc.splits}, &y, nullptr);
  const int64_t per = n / tc.splits;
  for (int64_t ch = 0; ch < c; ++ch) {
    double mean_avg = 0, var_avg = 0;
    for (int g = 0; g < tc.splits; ++g) {
      std::vector<double> vals;
      for (int64_t i = g * per; i < (g + 1) * per; ++i)
        for (int64_t j = 0; j < s; ++j) vals.push_back(x.data[(i * c + ch) * s + j]);
      double mu = 0;
      for (double v : vals) mu += v;
      mu /= vals.size();
      double var = 0;
      for (double v : vals) var += (v - mu) * (v - mu);
      const double unbiased = var / (vals.size() - 1);
      var /= vals.size();
      mean_avg += mu / tc.splits;
      var_avg += unbiased / tc.splits;
      for (int64_t i = g * per; i < (g + 1) * per; ++i)
        for (int64_t j = 0; j < s; ++j) {
          const size_t k = (i * c + ch) * s + j;
          EXPECT_NEAR(y.data[k], gamma[ch] * (x.data[k] - mu) / std::sqrt(var + 1e-5) + beta[ch],
                      1e-12);
        }
    }
    EXPECT_NEAR(rmean[ch], 0.9 * rmean0[ch] + 0.1 * mean_avg, 1e-12);
    EXPECT_NEAR(rvar[ch], 0.9 * rvar0[ch] + 0.1 * var_avg, 1e-12);
  }
}

TEST_P(BatchNormTest, TrainBackwardMatchesFiniteDifferences) {
  const BnCase& tc = GetParam();
  const int64_t c = tc.shape[1];
  Blob<double> x = RandomBlob(tc.shape, 21, -2, 3);
  std::vector<double> gamma = RandomBlob({c}, 22, 0.5, 1.5).data;
  std::vector<double> beta = RandomBlob({c}, 23).data;
  std::vector<double> rmean(c, 0.0), rvar(c, 1.0);
  Blob<double> r = RandomBlob(tc.shape, 24);
  BatchNormOptions opt{/*train=*/true, tc.splits, /*update_running=*/false};
  auto loss = [&] {
    Blob<double> y;
    BatchNormForward(x, gamma.data(), beta.data(), rmean.data(), rvar.data(), opt, &y, nullptr);
    return Dot(y.data, r.data);
  };
  Blob<double> y, dx;
  BatchNormCache<double> cache;
  BatchNormForward(x, gamma.data(), beta.data(), rmean.data(), rvar.data(), opt, &y, &cache);
  std::vector<double> dgamma(c, 0.0), dbeta(c, 0.0);
  BatchNormBackward(x, gamma.data(), cache, r, &dx, dgamma.data(), dbeta.data());
  EXPECT_TRUE(AllClose(dx.data, NumericGradient(loss, &x.data), 1e-7, 1e-6)) << "dx";
  EXPECT_TRUE(AllClose(dgamma, NumericGradient(loss, &gamma), 1e-7, 1e-6)) << "dgamma";
  EXPECT_TRUE(AllClose(dbeta, NumericGradient(loss, &beta), 1e-7, 1e-6)) << "dbeta";
}

TEST_P(BatchNormTest, EvalUsesRunningStatsAndBackwardMatchesFiniteDifferences) {
  const BnCase& tc = GetParam();
  const int64_t c = tc.shape[1], s = Spatial(tc.shape);
  Blob<double> x = RandomBlob(tc.shape, 31, -2, 3);
  std::vector<double> gamma = RandomBlob({c}, 32, 0.5, 1.5).data;
  std::vector<double> beta = RandomBlob({c}, 33).data;
  std::vector<double> rmean = RandomBlob({c}, 34).data, rvar = RandomBlob({c}, 35, 0.5, 2).data;
  const std::vector<double> rmean0 = rmean;
  BatchNormOptions opt{/*train=*/false, tc.splits};
  Blob<double> y, dx;
  BatchNormCache<double> cache;
  BatchNormForward(x, gamma.data(), beta.data(), rmean.data(), rvar.data(), opt, &y, &cache);
  EXPECT_EQ(rmean, rmean0);  // eval never moves running stats
  for (int64_t k = 0; k < x.numel(); ++k) {
    const int64_t ch = (k / s) % c;
    EXPECT_NEAR(y.data[k],
                gamma[ch] * (x.data[k] - rmean[ch]) / std::sqrt(rvar[ch] + 1e-5) + beta[ch],
                1e-12);
  }
  Blob<double> r = RandomBlob(tc.shape, 36);
  auto loss = [&] {
    Blob<double> out;
    BatchNormForward(x, gamma.data(), beta.data(), rmean.data(), rvar.data(), opt, &out, nullptr);
    return Dot(out.data, r.data);
  };
  std::vector<double> dgamma(c, 0.0), dbeta(c, 0.0);
  BatchNormBackward(x, gamma.data(), cache, r, &dx, dgamma.data(), dbeta.data());
  EXPECT_TRUE(AllClose(dx.data, NumericGradient(loss, &x.data), 1e-7, 1e-6)) << "dx";
  EXPECT_TRUE(AllClose(dgamma, NumericGradient(loss, &gamma), 1e-7, 1e-6)) << "dgamma";
  EXPECT_TRUE(AllClose(dbeta, NumericGradient(loss, &beta), 1e-7, 1e-6)) << "dbeta";
}

INSTANTIATE_TEST_SUITE_P(Shapes, BatchNormTest,
                         ::testing::Values(BnCase{{4, 3, 5, 3}, 1}, BnCase{{4, 3, 5, 3}, 2},
                                           BnCase{{6, 2, 3, 3}, 3}, BnCase{{8, 3, 1, 1}, 4},
                                           BnCase{{6, 5}, 1},  // BatchNorm1d
                                           BnCase{{6, 5}, 2}));

TEST(BatchNormSplitTest, SplitsNormalizeEachGroupIndependently) {
  // Shifting the second half of the batch by a constant leaves the split-2 output unchanged
  // (each group is centred on its own mean) but changes the split-1 output.
  Blob<double> x = RandomBlob({4, 2, 3, 3}, 41);
  Blob<double> shifted = x;
  for (size_t k = shifted.data.size() / 2; k < shifted.data.size(); ++k) shifted.data[k] += 5;
  std::vector<double> gamma(2, 1.0), beta(2, 0.0), rm(2, 0.0), rv(2, 1.0);
  Blob<double> a, b;
  BatchNormForward(x, gamma.data(), beta.data(), rm.data(), rv.data(), {true, 2, false}, &a,
                   nullptr);
  BatchNormForward(shifted, gamma.data(), beta.data(), rm.data(), rv.data(), {true, 2, false}, &b,
                   nullptr);
  EXPECT_TRUE(AllClose(a.data, b.data, 1e-9, 0));
  BatchNormForward(x, gamma.data(), beta.data(), rm.data(), rv.data(), {true, 1, false}, &a,
                   nullptr);
  BatchNormForward(shifted, gamma.data(), beta.data(), rm.data(), rv.data(), {true, 1, false}, &b,
                   nullptr);
  EXPECT_FALSE(AllClose(a.data, b.data, 1e-3, 0));
}

}  // namespace
}  // namespace eigen_backend
}  // namespace moco
