// RandomResizedCrop's window sampling (torchvision 0.14 RandomResizedCrop.get_params).
#ifndef DATA_RANDOM_RESIZED_CROP_H_
#define DATA_RANDOM_RESIZED_CROP_H_

#include <random>

#include "data/image_ops.h"

namespace moco {
namespace data {

// Up to 10 tries: area fraction uniform in [scale_min, scale_max], log aspect ratio (w/h)
// uniform in [log ratio_min, log ratio_max], w = round(sqrt(area * ratio)),
// h = round(sqrt(area / ratio)); the first window that fits is placed uniformly at random.
// Otherwise the fallback: the largest centered window whose aspect ratio is clamped to
// [ratio_min, ratio_max]. Requires height, width >= 1 and 0 < ratio_min <= ratio_max.
CropBox SampleRandomResizedCrop(int height, int width, float scale_min, float scale_max,
                                float ratio_min, float ratio_max, std::mt19937_64& rng);

}  // namespace data
}  // namespace moco

#endif  // DATA_RANDOM_RESIZED_CROP_H_
