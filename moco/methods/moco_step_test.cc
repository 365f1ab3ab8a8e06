#include "moco/methods/moco_step.h"

#include <algorithm>
#include <set>

#include "gtest/gtest.h"

namespace moco {
namespace {

TEST(RandomPermutationTest, IsAPermutationAndDeterministic) {
  for (int64_t n : {1, 2, 7, 256}) {
    const std::vector<int64_t> p = RandomPermutation(n, 42);
    std::vector<int64_t> sorted = p;
    std::sort(sorted.begin(), sorted.end());
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(sorted[i], i);
    EXPECT_EQ(p, RandomPermutation(n, 42));
  }
  EXPECT_NE(RandomPermutation(256, 1), RandomPermutation(256, 2));
}

TEST(RandomPermutationTest, ShuffleThenUnshuffleRestoresOrder) {
  const std::vector<int64_t> perm = RandomPermutation(64, 7);
  const std::vector<int64_t> inverse = InversePermutation(perm);
  std::vector<int> items(64);
  for (int i = 0; i < 64; ++i) items[i] = 1000 + i;
  std::vector<int> shuffled(64), restored(64);
  for (int i = 0; i < 64; ++i) shuffled[i] = items[perm[i]];      // GatherRows(x, perm)
  for (int i = 0; i < 64; ++i) restored[i] = shuffled[inverse[i]];  // GatherRows(y, inverse)
  EXPECT_EQ(restored, items);
  EXPECT_NE(shuffled, items);
}

TEST(RandomPermutationTest, PositionsAreRoughlyUniform) {
  // Where element 0 lands over many seeds: each of 8 positions ~1/8 of the time.
  std::vector<int> counts(8, 0);
  const int trials = 16000;
  for (int s = 0; s < trials; ++s) {
    const std::vector<int64_t> p = RandomPermutation(8, s);
    counts[std::find(p.begin(), p.end(), 0) - p.begin()]++;
  }
  for (int c : counts) EXPECT_NEAR(c, trials / 8, 150);  // ~4.5 standard deviations
}

}  // namespace
}  // namespace moco
