#include "backends/eigen/batch_norm.h"

#include <cmath>
#include <vector>

#include "absl/types/span.h"
#include "backends/eigen/grad_check.h"
#include "gtest/gtest.h"
#include "moco/core/in_process_group.h"

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

// SyncBatchNorm: ranks as threads (moco/core/in_process_group.h), exact double sums.
class ThreadBatchNormGroup final : public BatchNormGroup {
 public:
  ThreadBatchNormGroup(InProcessGroup& group, int rank) : group_(group), rank_(rank) {}
  int world_size() const override { return group_.world_size(); }
  int rank() const override { return rank_; }
  void AllReduceSum(std::vector<double>& values) override {
    group_.AllReduceSum(rank_, absl::MakeSpan(values));
  }

 private:
  InProcessGroup& group_;
  const int rank_;
};

Blob<double> Rows(const Blob<double>& b, int64_t first, int64_t count) {
  Blob<double> out;
  out.shape = b.shape;
  out.shape[0] = count;
  const int64_t row = static_cast<int64_t>(b.data.size()) / b.shape[0];
  out.data.assign(b.data.begin() + first * row, b.data.begin() + (first + count) * row);
  return out;
}

// Each of `world` ranks runs SyncBatchNorm forward and backward on its consecutive share of the
// batch; one plain BatchNorm (splits 1) over the whole batch is the reference: outputs, input
// gradients, dgamma / dbeta summed over the ranks, running statistics on every rank.
void CheckSyncAgainstWholeBatch(const std::vector<int64_t>& shape, int world) {
  const int64_t c = shape[1], rows = shape[0] / world;
  const Blob<double> x = RandomBlob(shape, 51, -2, 3), dy = RandomBlob(shape, 52);
  const std::vector<double> gamma = RandomBlob({c}, 53, 0.5, 1.5).data;
  const std::vector<double> beta = RandomBlob({c}, 54).data;
  const std::vector<double> rm0 = RandomBlob({c}, 55).data, rv0 = RandomBlob({c}, 56, 0.5, 2).data;

  std::vector<double> rm = rm0, rv = rv0, dgamma(c, 0.0), dbeta(c, 0.0);
  Blob<double> y, dx;
  BatchNormCache<double> cache;
  BatchNormForward(x, gamma.data(), beta.data(), rm.data(), rv.data(), {true, 1}, &y, &cache);
  BatchNormBackward(x, gamma.data(), cache, dy, &dx, dgamma.data(), dbeta.data());

  struct RankOut {
    Blob<double> y, dx;
    std::vector<double> rm, rv, dgamma, dbeta;
  };
  std::vector<RankOut> out(static_cast<size_t>(world));
  InProcessGroup threads(world);
  RunOnRanks(threads, [&](Communicator& comm) {
    const int r = comm.rank();
    ThreadBatchNormGroup group(threads, r);
    RankOut& o = out[static_cast<size_t>(r)];
    o.rm = rm0;
    o.rv = rv0;
    o.dgamma.assign(c, 0.0);
    o.dbeta.assign(c, 0.0);
    BatchNormOptions opt;
    opt.group = &group;
    BatchNormCache<double> rank_cache;
    const Blob<double> xr = Rows(x, r * rows, rows);
    BatchNormForward(xr, gamma.data(), beta.data(), o.rm.data(), o.rv.data(), opt, &o.y,
                     &rank_cache);
    BatchNormBackward(xr, gamma.data(), rank_cache, Rows(dy, r * rows, rows), &o.dx,
                      o.dgamma.data(), o.dbeta.data());
  });
  std::vector<double> dgamma_sum(c, 0.0), dbeta_sum(c, 0.0);
  for (int r = 0; r < world; ++r) {
    const RankOut& o = out[static_cast<size_t>(r)];
    EXPECT_TRUE(AllClose(o.y.data, Rows(y, r * rows, rows).data, 1e-10, 1e-10)) << "rank " << r;
    EXPECT_TRUE(AllClose(o.dx.data, Rows(dx, r * rows, rows).data, 1e-10, 1e-10)) << "rank " << r;
    EXPECT_TRUE(AllClose(o.rm, rm, 1e-10, 1e-10)) << "running_mean, rank " << r;
    EXPECT_TRUE(AllClose(o.rv, rv, 1e-10, 1e-10)) << "running_var, rank " << r;
    for (int64_t ch = 0; ch < c; ++ch) {
      dgamma_sum[ch] += o.dgamma[ch];
      dbeta_sum[ch] += o.dbeta[ch];
    }
  }
  EXPECT_TRUE(AllClose(dgamma_sum, dgamma, 1e-10, 1e-10));
  EXPECT_TRUE(AllClose(dbeta_sum, dbeta, 1e-10, 1e-10));
}

TEST(SyncBatchNormTest, TwoRanksEqualOneBatchNormOverTheirUnion4d) {
  CheckSyncAgainstWholeBatch({6, 3, 4, 5}, 2);
}

TEST(SyncBatchNormTest, ThreeRanksEqualOneBatchNormOverTheirUnion1d) {
  CheckSyncAgainstWholeBatch({9, 4}, 3);
}

}  // namespace
}  // namespace eigen_backend
}  // namespace moco
