#include "moco/core/split_mix.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace moco {
namespace {

// The reference implementation (Vigna's splitmix64.c) seeded with 0 outputs these.
TEST(SplitMix64Test, MatchesTheReferenceStream) {
  uint64_t state = 0;
  EXPECT_EQ(SplitMix64Next(state), 0xE220A8397B1DCDAFULL);
  EXPECT_EQ(SplitMix64Next(state), 0x6E789E6AA1B965F4ULL);
  EXPECT_EQ(SplitMix64Next(state), 0x06C45D188009454FULL);
  EXPECT_EQ(state, 3 * kSplitMix64Gamma);
}

TEST(SplitMix64Test, NextIsTheMixOfTheAdvancedState) {
  for (uint64_t s : {0ULL, 1ULL, 12345ULL, ~0ULL}) {
    uint64_t state = s;
    EXPECT_EQ(SplitMix64Next(state), SplitMix64Mix(s + kSplitMix64Gamma));
  }
  EXPECT_EQ(SplitMix64Mix(0), 0u);  // the finalizer alone fixes 0
  EXPECT_EQ(SplitMix64Mix(12345), 0xF36CF1164265DD51ULL);
}

}  // namespace
}  // namespace moco
