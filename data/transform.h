// Per-image transforms: uint8 HWC image -> normalized float CHW, the MoCo augmentation recipes
// and the evaluation view.
//
//   ASSIGN_OR_RETURN(auto aug, MakeTrainTransform(config.data(), config.model().in_channels()));
//   std::vector<float> view(aug->out_channels() * aug->out_height() * aug->out_width());
//   std::mt19937_64 rng = SampleRng(seed, epoch, index, /*view=*/0);
//   aug->Apply(image, rng, view.data());
//
// Operation semantics are torchvision 0.14's tensor ops on float [0, 1] images (see
// data/image_ops.h): bilinear resize without antialiasing, GaussianBlur with kernel size
// 2 * ceil(3 sigma) + 1 (the support of PIL's GaussianBlur(radius = sigma) that MoCo v2 used).
#ifndef DATA_TRANSFORM_H_
#define DATA_TRANSFORM_H_

#include <memory>
#include <random>

#include "absl/status/statusor.h"
#include "data/image.h"
#include "moco/config/config.pb.h"

namespace moco {
namespace data {

// Maps one image to out_channels() x out_height() x out_width() floats. Implementations are
// immutable and thread-safe (scratch memory is per thread); Apply does no per-pixel virtual
// calls and no allocation once a thread's buffers are warm.
class Transform {
 public:
  virtual ~Transform() = default;
  virtual int out_channels() const = 0;
  virtual int out_height() const = 0;
  virtual int out_width() const = 0;
  // Writes the transformed image, CHW, to `out` (out_channels() * out_height() * out_width()
  // floats). `in` has 1 or 3 channels and at least one pixel; a channel count different from
  // out_channels() is converted (1 -> 3 replicates, 3 -> 1 takes the luminance). `rng` is the
  // sample's own stream (data/random.h SampleRng); deterministic transforms ignore it.
  virtual void Apply(const Image& in, std::mt19937_64& rng, float* out) const = 0;
  // As Apply, for view `view` (0-based) of a multi-view sample: asymmetric augmentations (MoCo
  // v3's blur and solarize probabilities) differ per view. Symmetric transforms: Apply.
  virtual void ApplyView(int view, const Image& in, std::mt19937_64& rng, float* out) const {
    Apply(in, rng, out);
  }
};

// The config's augmentation (moco/config/augmentation_presets.h ResolveAugmentation: preset values
// with explicit fields overriding) at data.image_size, producing `in_channels` channels.
// Operation order: MOCO_V1: crop, grayscale, jitter, flip. MOCO_V2 / CUSTOM: crop,
// jitter(p), grayscale, blur(p), flip. CIFAR: crop, jitter(p), grayscale, flip (blur too if
// blur_prob is set). MOCO_V3: crop, jitter(p), grayscale, blur(p), solarize(p), flip, with
// view 2 (ApplyView(1, ...)) using view2_blur_prob and view2_solarize_prob. Jitter applies brightness, contrast, saturation, hue in a random order.
// With 1 output channel, saturation, hue and grayscale have no effect and are skipped (one
// LOG(INFO)). Normalize uses normalize_mean/std (1 value broadcasts; none = no normalization).
// Errors name the config field, e.g. "data.augmentation.crop_scale_min (0) must be in (0, 1]".
absl::StatusOr<std::shared_ptr<const Transform>> MakeTrainTransform(const DataConfig& config,
                                                                    int in_channels);

// The evaluation view, no randomness: images already image_size x image_size pass through;
// others have their shorter side resized (bilinear) to `resize` pixels, then the center
// image_size x image_size crop is taken (torchvision Resize + CenterCrop); then Normalize.
// resize = round(image_size / 0.875) for IMAGE_FOLDER (ImageNet's 256 for 224), image_size
// for the others.
absl::StatusOr<std::shared_ptr<const Transform>> MakeEvalTransform(const DataConfig& config,
                                                                   int in_channels);

}  // namespace data
}  // namespace moco

#endif  // DATA_TRANSFORM_H_
