#include "backends/eigen/info_nce.h"

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

TEST(InfoNceTest, LossAndLogitsMatchDirectFormulaAndGradientMatchesFiniteDifferences) {
  const int64_t n = 5, d = 4, k = 7;
  const double t = 0.2;
  Blob<double> q = UnitRows({n, d}, 91), key = UnitRows({n, d}, 92), queue = UnitRows({k, d}, 93);
  InfoNceResult<double> r = InfoNceForwardBackward(q, key, queue, t);
  ASSERT_EQ(r.logits.shape, (std::vector<int64_t>{n, 1 + k}));
  double expected_loss = 0;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<double> l(1 + k);
    for (int64_t j = 0; j <= k; ++j) {
      const double* other = j == 0 ? &key.data[i * d] : &queue.data[(j - 1) * d];
      double dot = 0;
      for (int64_t c = 0; c < d; ++c) dot += q.data[i * d + c] * other[c];
      l[j] = dot / t;
      EXPECT_NEAR(r.logits.data[i * (1 + k) + j], l[j], 1e-13);
    }
    double z = 0;
    for (double v : l) z += std::exp(v);
    expected_loss += -std::log(std::exp(l[0]) / z) / n;
  }
  EXPECT_NEAR(r.loss, expected_loss, 1e-12);
  auto loss = [&] { return InfoNceForwardBackward(q, key, queue, t).loss; };
  EXPECT_TRUE(AllClose(r.grad_q.data, NumericGradient(loss, &q.data), 1e-8, 1e-6));
}

TEST(InfoNceTest, Top1CountsRowsWhosePositiveWins) {
  Blob<double> q({2, 2}), k({2, 2}), queue({1, 2});
  q.data = {1, 0, 1, 0};
  k.data = {1, 0, 0, 1};  // row 0: positive 1 > negative 0.5; row 1: positive 0 < 0.5
  queue.data = {0.5, 0.5};
  InfoNceResult<double> r = InfoNceForwardBackward(q, k, queue, 1.0);
  EXPECT_DOUBLE_EQ(r.top1, 0.5);
}

}  // namespace
}  // namespace eigen_backend
}  // namespace moco
