#include "data/random.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace moco {
namespace data {
namespace {

TEST(RandomTest, StreamsDependOnEveryKeyAndAreReproducible) {
  auto first = [](std::mt19937_64 r) { return r(); };
  const uint64_t base = first(SampleRng(1, 2, 3, 0));
  EXPECT_EQ(base, first(SampleRng(1, 2, 3, 0)));
  EXPECT_NE(base, first(SampleRng(2, 2, 3, 0)));
  EXPECT_NE(base, first(SampleRng(1, 3, 3, 0)));
  EXPECT_NE(base, first(SampleRng(1, 2, 4, 0)));
  EXPECT_NE(base, first(SampleRng(1, 2, 3, 1)));
  EXPECT_NE(first(EpochRng(1, 2)), first(EpochRng(1, 3)));
}

TEST(RandomTest, UniformHelpersStayInRangeWithRightMoments) {
  std::mt19937_64 rng(7);
  const int n = 200000;
  double sum = 0;
  std::vector<int> counts(7, 0);
  int hits = 0;
  for (int i = 0; i < n; ++i) {
    const float u = UniformFloat(rng, -0.5f, 1.5f);
    ASSERT_GE(u, -0.5f);
    ASSERT_LT(u, 1.5f);
    sum += u;
    const uint64_t k = UniformIndex(rng, 7);
    ASSERT_LT(k, 7u);
    ++counts[k];
    hits += Bernoulli(rng, 0.3);
  }
  EXPECT_NEAR(sum / n, 0.5, 0.01);
  for (int c : counts) EXPECT_NEAR(c, n / 7.0, 5 * std::sqrt(n / 7.0));
  EXPECT_NEAR(hits / static_cast<double>(n), 0.3, 0.005);
}

}  // namespace
}  // namespace data
}  // namespace moco
