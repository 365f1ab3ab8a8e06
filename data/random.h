// Deterministic random streams for the data pipeline.
//
// Every sample's augmentation draws from its own stream, seeded from (seed, epoch, dataset
// index, view) and never from thread order, so batches do not depend on the worker count:
//
//   std::mt19937_64 rng = SampleRng(seed, epoch, index, /*view=*/1);
//   float sigma = UniformFloat(rng, 0.1f, 2.0f);
//
// The helpers below convert engine output to numbers with explicit arithmetic (not the
// implementation-defined std:: distributions), so streams are identical on every platform.
#ifndef DATA_RANDOM_H_
#define DATA_RANDOM_H_

#include <cstdint>
#include <random>

namespace moco {
namespace data {

// One SplitMix64 step from state x (moco/core/split_mix.h): a bijective 64-bit mixer.
uint64_t Mix64(uint64_t x);

// The stream of one augmented view of one sample.
std::mt19937_64 SampleRng(uint64_t seed, int64_t epoch, int64_t index, int view);

// The stream that shuffles epoch `epoch`.
std::mt19937_64 EpochRng(uint64_t seed, int64_t epoch);

// Uniform in [0, 1) with 53 random bits.
double Uniform01(std::mt19937_64& rng);
// Uniform in [lo, hi) (returns lo when hi <= lo).
float UniformFloat(std::mt19937_64& rng, float lo, float hi);
// Uniform integer in [0, n) for n >= 1 (Lemire's multiply-shift with rejection; unbiased).
uint64_t UniformIndex(std::mt19937_64& rng, uint64_t n);
// True with probability p. Always consumes one draw, so the stream position after it does not
// depend on p.
bool Bernoulli(std::mt19937_64& rng, double p);

}  // namespace data
}  // namespace moco

#endif  // DATA_RANDOM_H_
