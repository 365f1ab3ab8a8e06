#include "data/transform.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "data/image_ops.h"
#include "data/random.h"
#include "data/random_resized_crop.h"
#include "glog/logging.h"
#include "moco/config/augmentation_presets.h"
#include "moco/core/status_macros.h"

namespace moco {
namespace data {
namespace {

const char kAug[] = "data.augmentation.";

// Per-channel (x - mean) / std.
struct Normalization {
  float mean[3] = {0, 0, 0};
  float std[3] = {1, 1, 1};
};

absl::StatusOr<Normalization> MakeNormalization(const AugmentationConfig& a, int channels) {
  Normalization n;
  const int m = a.normalize_mean_size();
  if (m != 0 && m != 1 && m != channels) {
    return absl::InvalidArgumentError(absl::StrCat(
        kAug, "normalize_mean has ", m, " values; need 1 or ", channels, " (one per channel)"));
  }
  if (a.normalize_std_size() != m) {
    return absl::InvalidArgumentError(absl::StrCat(kAug, "normalize_std has ",
                                                   a.normalize_std_size(), " values; need ", m,
                                                   " (as many as normalize_mean)"));
  }
  for (int c = 0; c < channels && m > 0; ++c) {
    const int i = m == 1 ? 0 : c;
    n.mean[c] = a.normalize_mean(i);
    n.std[c] = a.normalize_std(i);
    if (!(n.std[c] > 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat(kAug, "normalize_std[", i, "] (", n.std[c], ") must be > 0"));
    }
  }
  return n;
}

absl::Status CheckCommon(const DataConfig& config, int in_channels) {
  if (in_channels != 1 && in_channels != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("model.in_channels (", in_channels, ") must be 1 or 3"));
  }
  if (config.image_size() <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("data.image_size (", config.image_size(), ") must be > 0"));
  }
  return absl::OkStatus();
}

// Writes `img` normalized (and mirrored if `flip`) to `out`.
void WriteNormalized(const FloatImage& img, const Normalization& norm, bool flip, float* out) {
  const int w = img.width;
  for (int c = 0; c < img.channels; ++c) {
    const float mean = norm.mean[c], std = norm.std[c];
    const float* src = img.channel(c);
    for (int y = 0; y < img.height; ++y) {
      const float* row = src + static_cast<size_t>(y) * w;
      float* dst = out + (static_cast<size_t>(c) * img.height + y) * w;
      if (flip) {
        for (int x = 0; x < w; ++x) dst[x] = (row[w - 1 - x] - mean) / std;
      } else {
        for (int x = 0; x < w; ++x) dst[x] = (row[x] - mean) / std;
      }
    }
  }
}

enum class Op { kJitter, kGrayscale, kBlur, kSolarize, kFlip };

// The probabilities that differ between the views of a sample (MoCo v3); view 2 falls back to
// view 1's where its own field is unset.
struct ViewProbabilities {
  float blur = 0;
  float solarize = 0;
};

class AugmentTransform final : public Transform {
 public:
  AugmentTransform(const AugmentationConfig& a, int size, int channels, Normalization norm)
      : a_(a), size_(size), channels_(channels), norm_(norm) {
    if (a.preset() == AugmentationConfig::MOCO_V1) {
      ops_ = {Op::kGrayscale, Op::kJitter, Op::kBlur, Op::kSolarize, Op::kFlip};
    } else {
      ops_ = {Op::kJitter, Op::kGrayscale, Op::kBlur, Op::kSolarize, Op::kFlip};
    }
    color_ = channels == 3;
    views_[0] = {a.blur_prob(), a.solarize_prob()};
    views_[1] = {a.has_view2_blur_prob() ? a.view2_blur_prob() : a.blur_prob(),
                 a.has_view2_solarize_prob() ? a.view2_solarize_prob() : a.solarize_prob()};
  }

  int out_channels() const override { return channels_; }
  int out_height() const override { return size_; }
  int out_width() const override { return size_; }

  void Apply(const Image& in, std::mt19937_64& rng, float* out) const override {
    ApplyView(0, in, rng, out);
  }

  void ApplyView(int view, const Image& in, std::mt19937_64& rng, float* out) const override {
    const ViewProbabilities& p = views_[view == 0 ? 0 : 1];
    thread_local FloatImage img;
    thread_local std::vector<float> scratch;
    const CropBox box =
        SampleRandomResizedCrop(in.height, in.width, a_.crop_scale_min(), a_.crop_scale_max(),
                                a_.crop_ratio_min(), a_.crop_ratio_max(), rng);
    ResizeCropBilinear(in, box, size_, size_, &img);
    ConvertChannels(channels_, &img);
    bool flip = false;
    for (Op op : ops_) {
      switch (op) {
        case Op::kJitter:
          Jitter(rng, &img);
          break;
        case Op::kGrayscale:
          if (Bernoulli(rng, a_.grayscale_prob()) && color_) Grayscale(&img);
          break;
        case Op::kBlur:
          if (p.blur > 0 && Bernoulli(rng, p.blur)) {
            const float sigma = UniformFloat(rng, a_.blur_sigma_min(), a_.blur_sigma_max());
            GaussianBlur(sigma, &img, &scratch);
          }
          break;
        case Op::kSolarize:
          if (p.solarize > 0 && Bernoulli(rng, p.solarize)) Solarize(kSolarizeThreshold, &img);
          break;
        case Op::kFlip:
          flip = Bernoulli(rng, a_.hflip_prob());
          break;
      }
    }
    WriteNormalized(img, norm_, flip, out);
  }

 private:
  // torchvision ColorJitter inside RandomApply(p): a random order of the four adjustments,
  // each factor uniform in [max(0, 1 - s), 1 + s] (hue shift in [-h, h]); zero strengths off.
  void Jitter(std::mt19937_64& rng, FloatImage* img) const {
    if (!Bernoulli(rng, a_.color_jitter_prob())) return;
    int order[4] = {0, 1, 2, 3};
    for (int i = 3; i > 0; --i) std::swap(order[i], order[UniformIndex(rng, i + 1)]);
    const float s[3] = {a_.brightness(), a_.contrast(), a_.saturation()};
    float factor[4];
    for (int k = 0; k < 3; ++k) factor[k] = UniformFloat(rng, std::max(0.f, 1 - s[k]), 1 + s[k]);
    factor[3] = UniformFloat(rng, -a_.hue(), a_.hue());
    for (int k : order) {
      switch (k) {
        case 0:
          if (s[0] > 0) AdjustBrightness(factor[0], img);
          break;
        case 1:
          if (s[1] > 0) AdjustContrast(factor[1], img);
          break;
        case 2:
          if (s[2] > 0 && color_) AdjustSaturation(factor[2], img);
          break;
        default:
          if (a_.hue() > 0 && color_) AdjustHue(factor[3], img);
          break;
      }
    }
  }

  const AugmentationConfig a_;
  const int size_, channels_;
  const Normalization norm_;
  std::vector<Op> ops_;
  bool color_;
  ViewProbabilities views_[2];
};

class EvalTransform final : public Transform {
 public:
  EvalTransform(int size, int resize, int channels, Normalization norm)
      : size_(size), resize_(resize), channels_(channels), norm_(norm) {}

  int out_channels() const override { return channels_; }
  int out_height() const override { return size_; }
  int out_width() const override { return size_; }

  void Apply(const Image& in, std::mt19937_64& /*rng*/, float* out) const override {
    thread_local FloatImage img, resized;
    if (in.height == size_ && in.width == size_) {
      ResizeCropBilinear(in, {0, 0, in.height, in.width}, size_, size_, &img);
    } else {
      // torchvision Resize(int): shorter side -> resize_, longer side truncated.
      int new_h, new_w;
      if (in.height <= in.width) {
        new_h = resize_;
        new_w = static_cast<int>(static_cast<int64_t>(resize_) * in.width / in.height);
      } else {
        new_w = resize_;
        new_h = static_cast<int>(static_cast<int64_t>(resize_) * in.height / in.width);
      }
      ResizeCropBilinear(in, {0, 0, in.height, in.width}, new_h, new_w, &resized);
      // CenterCrop: offsets round((new - size) / 2) half to even; new >= size here.
      const int top = static_cast<int>(std::nearbyint((new_h - size_) / 2.0));
      const int left = static_cast<int>(std::nearbyint((new_w - size_) / 2.0));
      img.Reshape(resized.channels, size_, size_);
      for (int c = 0; c < resized.channels; ++c) {
        for (int y = 0; y < size_; ++y) {
          const float* src = resized.channel(c) + static_cast<size_t>(y + top) * new_w + left;
          std::copy(src, src + size_, img.channel(c) + static_cast<size_t>(y) * size_);
        }
      }
    }
    ConvertChannels(channels_, &img);
    WriteNormalized(img, norm_, /*flip=*/false, out);
  }

 private:
  const int size_, resize_, channels_;
  const Normalization norm_;
};

absl::Status CheckAugmentation(const AugmentationConfig& a) {
  auto bad = [](const std::string& field, double value, const std::string& rule) {
    return absl::InvalidArgumentError(absl::StrCat(kAug, field, " (", value, ") ", rule));
  };
  if (!(a.crop_scale_min() > 0 && a.crop_scale_min() <= 1)) {
    return bad("crop_scale_min", a.crop_scale_min(), "must be in (0, 1]");
  }
  if (!(a.crop_scale_max() >= a.crop_scale_min() && a.crop_scale_max() <= 1)) {
    return bad("crop_scale_max", a.crop_scale_max(), "must be in [crop_scale_min, 1]");
  }
  if (!(a.crop_ratio_min() > 0)) return bad("crop_ratio_min", a.crop_ratio_min(), "must be > 0");
  if (!(a.crop_ratio_max() >= a.crop_ratio_min())) {
    return bad("crop_ratio_max", a.crop_ratio_max(), "must be >= crop_ratio_min");
  }
  const std::pair<const char*, float> probs[] = {{"hflip_prob", a.hflip_prob()},
                                                 {"color_jitter_prob", a.color_jitter_prob()},
                                                 {"grayscale_prob", a.grayscale_prob()},
                                                 {"blur_prob", a.blur_prob()},
                                                 {"solarize_prob", a.solarize_prob()},
                                                 {"view2_blur_prob", a.view2_blur_prob()},
                                                 {"view2_solarize_prob", a.view2_solarize_prob()}};
  for (const auto& [name, p] : probs) {
    if (!(p >= 0 && p <= 1)) return bad(name, p, "must be in [0, 1]");
  }
  const std::pair<const char*, float> strengths[] = {{"brightness", a.brightness()},
                                                     {"contrast", a.contrast()},
                                                     {"saturation", a.saturation()}};
  for (const auto& [name, s] : strengths) {
    if (!(s >= 0)) return bad(name, s, "must be >= 0");
  }
  if (!(a.hue() >= 0 && a.hue() <= 0.5f)) return bad("hue", a.hue(), "must be in [0, 0.5]");
  if (a.blur_prob() > 0 || a.view2_blur_prob() > 0) {
    if (!(a.blur_sigma_min() > 0)) {
      return bad("blur_sigma_min", a.blur_sigma_min(), "must be > 0 when blur_prob > 0");
    }
    if (!(a.blur_sigma_max() >= a.blur_sigma_min() && a.blur_sigma_max() <= 20)) {
      return bad("blur_sigma_max", a.blur_sigma_max(), "must be in [blur_sigma_min, 20]");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<const Transform>> MakeTrainTransform(const DataConfig& config,
                                                                    int in_channels) {
  RETURN_IF_ERROR(CheckCommon(config, in_channels));
  const AugmentationConfig a = ResolveAugmentation(config.augmentation());
  RETURN_IF_ERROR(CheckAugmentation(a));
  ASSIGN_OR_RETURN(Normalization norm, MakeNormalization(a, in_channels));
  if (in_channels == 1 && (a.saturation() > 0 || a.hue() > 0 || a.grayscale_prob() > 0)) {
    LOG(INFO) << "model.in_channels is 1: ColorJitter saturation/hue and RandomGrayscale have "
                 "no effect on grayscale images and are skipped (brightness and contrast apply)";
  }
  return std::shared_ptr<const Transform>(
      std::make_shared<AugmentTransform>(a, config.image_size(), in_channels, norm));
}

absl::StatusOr<std::shared_ptr<const Transform>> MakeEvalTransform(const DataConfig& config,
                                                                   int in_channels) {
  RETURN_IF_ERROR(CheckCommon(config, in_channels));
  const AugmentationConfig a = ResolveAugmentation(config.augmentation());
  ASSIGN_OR_RETURN(Normalization norm, MakeNormalization(a, in_channels));
  const int size = config.image_size();
  const int resize = config.dataset() == DataConfig::IMAGE_FOLDER
                         ? static_cast<int>(std::lround(size / 0.875))
                         : size;
  return std::shared_ptr<const Transform>(
      std::make_shared<EvalTransform>(size, resize, in_channels, norm));
}

}  // namespace data
}  // namespace moco
