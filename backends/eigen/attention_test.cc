#include "backends/eigen/attention.h"

#include <cmath>
#include <vector>

#include "backends/eigen/grad_check.h"
#include "gtest/gtest.h"

namespace moco {
namespace eigen_backend {
namespace {

// N 2 images, T 5 tokens, H 2 heads of Dh 3: D 6, qkv (2, 5, 18).
constexpr int kHeads = 2;

// The definition, one (image, head, query) at a time, in plain loops.
std::vector<double> NaiveAttention(const Blob<double>& qkv) {
  const int64_t n = qkv.dim(0), t = qkv.dim(1), d = qkv.dim(2) / 3, dh = d / kHeads;
  std::vector<double> out(static_cast<size_t>(n * t * d));
  auto at = [&](int64_t i, int64_t tok, int64_t col) { return qkv.data[(i * t + tok) * 3 * d + col]; };
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t h = 0; h < kHeads; ++h) {
      for (int64_t a = 0; a < t; ++a) {
        std::vector<double> s(static_cast<size_t>(t));
        double total = 0;
        for (int64_t b = 0; b < t; ++b) {
          double dot = 0;
          for (int64_t j = 0; j < dh; ++j) dot += at(i, a, h * dh + j) * at(i, b, d + h * dh + j);
          s[b] = std::exp(dot / std::sqrt(static_cast<double>(dh)));
          total += s[b];
        }
        for (int64_t j = 0; j < dh; ++j) {
          double o = 0;
          for (int64_t b = 0; b < t; ++b) o += s[b] / total * at(i, b, 2 * d + h * dh + j);
          out[(i * t + a) * d + h * dh + j] = o;
        }
      }
    }
  }
  return out;
}

TEST(AttentionTest, ForwardIsScaledDotProductAttentionPerHead) {
  Blob<double> qkv = RandomBlob({2, 5, 18}, 101, -2.0, 2.0);
  Blob<double> out;
  AttentionCache<double> cache;
  AttentionForward(qkv, kHeads, &out, &cache);
  ASSERT_EQ(out.shape, (std::vector<int64_t>{2, 5, 6}));
  EXPECT_TRUE(AllClose(out.data, NaiveAttention(qkv), 1e-12, 1e-12));
  for (int64_t row = 0; row < 2 * kHeads * 5; ++row) {
    double sum = 0;
    for (int b = 0; b < 5; ++b) sum += cache.probs.data[row * 5 + b];
    EXPECT_NEAR(sum, 1.0, 1e-12);
  }
}

TEST(AttentionTest, LargeLogitsDoNotOverflow) {
  Blob<double> qkv = RandomBlob({1, 4, 18}, 102, -1.0, 1.0);
  for (double& v : qkv.data) v *= 40;  // logits of thousands: exp overflows without the max shift
  Blob<double> out;
  AttentionCache<double> cache;
  AttentionForward(qkv, kHeads, &out, &cache);
  for (double v : out.data) EXPECT_TRUE(std::isfinite(v));
}

TEST(AttentionTest, BackwardMatchesFiniteDifferences) {
  Blob<double> qkv = RandomBlob({2, 5, 18}, 103);
  Blob<double> r = RandomBlob({2, 5, 6}, 104);
  auto loss = [&] {
    Blob<double> out;
    AttentionCache<double> c;
    AttentionForward(qkv, kHeads, &out, &c);
    return Dot(out.data, r.data);
  };
  Blob<double> out, d_qkv;
  AttentionCache<double> cache;
  AttentionForward(qkv, kHeads, &out, &cache);
  AttentionBackward(qkv, kHeads, &cache, r, &d_qkv);
  ASSERT_EQ(d_qkv.shape, qkv.shape);
  EXPECT_TRUE(AllClose(d_qkv.data, NumericGradient(loss, &qkv.data), 1e-8, 1e-6));
}

}  // namespace
}  // namespace eigen_backend
}  // namespace moco
