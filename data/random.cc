#include "data/random.h"

#include "moco/core/split_mix.h"

namespace moco {
namespace data {

uint64_t Mix64(uint64_t x) { return SplitMix64Next(x); }

std::mt19937_64 SampleRng(uint64_t seed, int64_t epoch, int64_t index, int view) {
  uint64_t h = Mix64(seed ^ 0x5A4D504C45ull);  // "SAMPLE"-ish domain tag
  h = Mix64(h ^ static_cast<uint64_t>(epoch));
  h = Mix64(h ^ static_cast<uint64_t>(index));
  h = Mix64(h ^ static_cast<uint64_t>(view));
  return std::mt19937_64(h);
}

std::mt19937_64 EpochRng(uint64_t seed, int64_t epoch) {
  uint64_t h = Mix64(seed ^ 0x5348554646ull);  // "SHUFF" domain tag
  h = Mix64(h ^ static_cast<uint64_t>(epoch));
  return std::mt19937_64(h);
}

double Uniform01(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);
}

float UniformFloat(std::mt19937_64& rng, float lo, float hi) {
  if (!(hi > lo)) {
    rng();
    return lo;
  }
  const float v = static_cast<float>(lo + (static_cast<double>(hi) - lo) * Uniform01(rng));
  return v < hi ? v : lo;  // guard against rounding up to hi
}

uint64_t UniformIndex(std::mt19937_64& rng, uint64_t n) {
  const unsigned __int128 bound = n;
  uint64_t x = rng();
  unsigned __int128 m = static_cast<unsigned __int128>(x) * bound;
  uint64_t low = static_cast<uint64_t>(m);
  if (low < n) {
    const uint64_t threshold = (0 - n) % n;
    while (low < threshold) {
      x = rng();
      m = static_cast<unsigned __int128>(x) * bound;
      low = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

bool Bernoulli(std::mt19937_64& rng, double p) { return Uniform01(rng) < p; }

}  // namespace data
}  // namespace moco
