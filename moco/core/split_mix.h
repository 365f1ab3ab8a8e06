// SplitMix64 (Steele, Lea, Flood 2014): the project's one integer mixer and seed-derivation
// generator. Used for the shuffling-BN permutation (moco/methods), per-step shuffle seeds
// (moco/pretrain) and the data pipeline's per-sample streams (data/random). Changing it changes
// every run's results.
//
//   uint64_t state = seed;
//   uint64_t r = SplitMix64Next(state);          // the generator: advances state
//   uint64_t h = SplitMix64Mix(x);               // the finalizer alone: a bijective mixer
#ifndef MOCO_CORE_SPLIT_MIX_H_
#define MOCO_CORE_SPLIT_MIX_H_

#include <cstdint>

namespace moco {

// The generator's increment (2^64 / golden ratio, odd).
inline constexpr uint64_t kSplitMix64Gamma = 0x9E3779B97F4A7C15ULL;

// The output function: a bijection of 64-bit values with good avalanche.
inline constexpr uint64_t SplitMix64Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Advances `state` by kSplitMix64Gamma and returns the mix of the new state.
inline uint64_t SplitMix64Next(uint64_t& state) {
  state += kSplitMix64Gamma;
  return SplitMix64Mix(state);
}

}  // namespace moco

#endif  // MOCO_CORE_SPLIT_MIX_H_
