#include "backends/eigen/in_batch_contrastive.h"

#include <cmath>
#include <vector>

#include "backends/eigen/elementwise.h"
#include "backends/eigen/grad_check.h"
#include "gtest/gtest.h"

namespace moco {
namespace eigen_backend {
namespace {

Blob<double> UnitRows(std::vector<int64_t> shape, uint64_t seed) {
  Blob<double> x = RandomBlob(std::move(shape), seed), y;
  L2NormalizeRowsForward(x, &y, nullptr);
  return y;
}

// Keys of a 3-rank global batch; this rank's 4 queries have their positives at rows 4..7.
TEST(InBatchContrastiveTest, LossMatchesCrossEntropyAndGradientMatchesFiniteDifferences) {
  const int64_t n = 4, d = 5, m = 12, offset = 4;
  const double t = 0.7;
  Blob<double> q = UnitRows({n, d}, 11), keys = UnitRows({m, d}, 12);
  InfoNceResult<double> r = InBatchContrastiveForwardBackward(q, keys, offset, t);
  ASSERT_EQ(r.logits.shape, (std::vector<int64_t>{n, m}));
  double expected = 0;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<double> l(m);
    double z = 0;
    for (int64_t j = 0; j < m; ++j) {
      double dot = 0;
      for (int64_t c = 0; c < d; ++c) dot += q.data[i * d + c] * keys.data[j * d + c];
      l[j] = dot / t;
      EXPECT_NEAR(r.logits.data[i * m + j], l[j], 1e-13);
      z += std::exp(l[j]);
    }
    expected += (std::log(z) - l[offset + i]) / n;
  }
  EXPECT_NEAR(r.loss, expected, 1e-12);
  auto loss = [&] { return InBatchContrastiveForwardBackward(q, keys, offset, t).loss; };
  EXPECT_TRUE(AllClose(r.grad_q.data, NumericGradient(loss, &q.data), 1e-8, 1e-6));
}

TEST(InBatchContrastiveTest, LossScaleMultipliesLossAndGradient) {
  Blob<double> q = UnitRows({3, 4}, 21), keys = UnitRows({3, 4}, 22);
  InfoNceResult<double> plain = InBatchContrastiveForwardBackward(q, keys, 0, 0.2);
  InfoNceResult<double> scaled = InBatchContrastiveForwardBackward(q, keys, 0, 0.2, 0.4);
  EXPECT_NEAR(scaled.loss, 0.4 * plain.loss, 1e-12);
  for (size_t i = 0; i < plain.grad_q.data.size(); ++i) {
    EXPECT_NEAR(scaled.grad_q.data[i], 0.4 * plain.grad_q.data[i], 1e-12);
  }
}

TEST(InBatchContrastiveTest, Top1UsesThePositiveColumnOfEachRow) {
  Blob<double> q({2, 2}), keys({2, 2});
  q.data = {1, 0, 1, 0};
  keys.data = {1, 0, 0, 1};  // row 0: positive (col 0) wins; row 1: positive (col 1) loses
  EXPECT_DOUBLE_EQ(InBatchContrastiveForwardBackward(q, keys, 0, 1.0).top1, 0.5);
  // With offset 0 and keys equal to the queries every row's positive is its own key.
  Blob<double> k2 = q;
  k2.data = {1, 0, 0, 1};
  Blob<double> q2({2, 2});
  q2.data = {1, 0, 0, 1};
  EXPECT_DOUBLE_EQ(InBatchContrastiveForwardBackward(q2, k2, 0, 1.0).top1, 1.0);
}

}  // namespace
}  // namespace eigen_backend
}  // namespace moco
