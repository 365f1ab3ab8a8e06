#include "data/random_resized_crop.h"

#include <algorithm>
#include <cmath>

#include "data/random.h"

namespace moco {
namespace data {

CropBox SampleRandomResizedCrop(int height, int width, float scale_min, float scale_max,
                                float ratio_min, float ratio_max, std::mt19937_64& rng) {
  const double area = static_cast<double>(height) * width;
  const float log_lo = std::log(ratio_min), log_hi = std::log(ratio_max);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * UniformFloat(rng, scale_min, scale_max);
    const double aspect = std::exp(static_cast<double>(UniformFloat(rng, log_lo, log_hi)));
    // Python's round(): half to even.
    const int w = static_cast<int>(std::nearbyint(std::sqrt(target_area * aspect)));
    const int h = static_cast<int>(std::nearbyint(std::sqrt(target_area / aspect)));
    if (0 < w && w <= width && 0 < h && h <= height) {
      const int top = static_cast<int>(UniformIndex(rng, static_cast<uint64_t>(height - h + 1)));
      const int left = static_cast<int>(UniformIndex(rng, static_cast<uint64_t>(width - w + 1)));
      return {top, left, h, w};
    }
  }
  const double in_ratio = static_cast<double>(width) / height;
  int w = width, h = height;
  if (in_ratio < ratio_min) {
    h = static_cast<int>(std::nearbyint(w / static_cast<double>(ratio_min)));
  } else if (in_ratio > ratio_max) {
    w = static_cast<int>(std::nearbyint(h * static_cast<double>(ratio_max)));
  }
  h = std::max(1, std::min(h, height));
  w = std::max(1, std::min(w, width));
  return {(height - h) / 2, (width - w) / 2, h, w};
}

}  // namespace data
}  // namespace moco
