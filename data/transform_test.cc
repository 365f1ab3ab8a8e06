#include "data/transform.h"

#include <cmath>
#include <vector>

#include "data/image_ops.h"
#include "data/random.h"
#include "data/random_resized_crop.h"
#include "data/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moco {
namespace data {
namespace {

using ::testing::HasSubstr;

// A config with no augmentation and no normalization (CUSTOM preset), at `size`.
DataConfig Plain(int size) {
  DataConfig c;
  c.set_image_size(size);
  c.mutable_augmentation()->set_preset(AugmentationConfig::CUSTOM);
  return c;
}

Image ColorImage(int h, int w) {
  Image img;
  img.Reshape(h, w, 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &img.pixels[(y * w + x) * 3];
      p[0] = static_cast<uint8_t>(20 + 13 * x);
      p[1] = static_cast<uint8_t>(200 - 11 * y);
      p[2] = static_cast<uint8_t>((37 * x + 53 * y) % 256);
    }
  return img;
}

std::vector<float> ApplyOnce(const Transform& t, const Image& img, std::mt19937_64& rng) {
  std::vector<float> out(t.out_channels() * t.out_height() * t.out_width());
  t.Apply(img, rng, out.data());
  return out;
}

TEST(RandomResizedCropTest, WindowsRespectScaleAndRatioRanges) {
  std::mt19937_64 rng(3);
  const int h = 120, w = 160, n = 20000;
  double scale_sum = 0;
  for (int i = 0; i < n; ++i) {
    const CropBox b = SampleRandomResizedCrop(h, w, 0.2f, 1.0f, 3.f / 4, 4.f / 3, rng);
    ASSERT_GE(b.top, 0);
    ASSERT_GE(b.left, 0);
    ASSERT_LE(b.top + b.height, h);
    ASSERT_LE(b.left + b.width, w);
    const double scale = static_cast<double>(b.height) * b.width / (h * w);
    const double ratio = static_cast<double>(b.width) / b.height;
    // Rounding w and h to integers moves scale and ratio by a pixel's worth.
    ASSERT_GE(scale, 0.2 * 0.97);
    ASSERT_LE(scale, 1.0);
    ASSERT_GE(ratio, 0.75 * 0.97);
    ASSERT_LE(ratio, 4.0 / 3 * 1.03);
    scale_sum += scale;
  }
  // torchvision's RandomResizedCrop.get_params on a 120x160 image gives a mean area fraction
  // of 0.4986 (20000 draws; rejected large windows pull it below uniform's 0.6). Standard
  // error here ~0.0016.
  EXPECT_NEAR(scale_sum / n, 0.4986, 0.0065);
}

TEST(RandomResizedCropTest, FallbackIsCenteredWithClampedRatio) {
  std::mt19937_64 rng(5);
  // Aspect ratio 2..3 at full area never fits a square: center crop, height = width / 2.
  const CropBox b = SampleRandomResizedCrop(100, 100, 1.f, 1.f, 2.f, 3.f, rng);
  EXPECT_EQ(b.width, 100);
  EXPECT_EQ(b.height, 50);
  EXPECT_EQ(b.top, 25);
  EXPECT_EQ(b.left, 0);
}

TEST(TransformTest, PlainTrainTransformIsToTensorThenNormalize) {
  DataConfig c = Plain(6);
  c.mutable_augmentation()->add_normalize_mean(0.5f);
  c.mutable_augmentation()->add_normalize_std(0.25f);
  auto t = MakeTrainTransform(c, 3);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->out_channels(), 3);
  EXPECT_EQ((*t)->out_height(), 6);
  const Image img = ColorImage(6, 6);
  std::mt19937_64 rng(1);
  const std::vector<float> out = ApplyOnce(**t, img, rng);
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 36; ++i) {
      const float want = (img.pixels[3 * i + c] / 255.0f - 0.5f) / 0.25f;
      ASSERT_NEAR(out[c * 36 + i], want, 1e-6) << c << " " << i;
    }
}

TEST(TransformTest, FlipRateIsNearP) {
  DataConfig c = Plain(5);
  c.mutable_augmentation()->set_hflip_prob(0.5f);
  auto t = MakeTrainTransform(c, 3);
  ASSERT_TRUE(t.ok());
  const Image img = ColorImage(5, 5);
  std::mt19937_64 rng0(0);
  const std::vector<float> plain = ApplyOnce(**MakeTrainTransform(Plain(5), 3), img, rng0);
  int flips = 0;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    std::mt19937_64 rng = SampleRng(9, 0, i, 0);
    const std::vector<float> out = ApplyOnce(**t, img, rng);
    if (out == plain) continue;
    // Otherwise it must be the exact mirror image.
    for (int k = 0; k < 3; ++k)
      for (int y = 0; y < 5; ++y)
        for (int x = 0; x < 5; ++x)
          ASSERT_EQ(out[(k * 5 + y) * 5 + x], plain[(k * 5 + y) * 5 + 4 - x]);
    ++flips;
  }
  EXPECT_NEAR(flips / static_cast<double>(n), 0.5, 0.03);  // ~4 standard deviations
}

TEST(TransformTest, GrayscaleRateIsNearP) {
  DataConfig c = Plain(4);
  c.mutable_augmentation()->set_grayscale_prob(0.2f);
  auto t = MakeTrainTransform(c, 3);
  ASSERT_TRUE(t.ok());
  const Image img = ColorImage(4, 4);
  int gray = 0;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    std::mt19937_64 rng = SampleRng(4, 1, i, 1);
    const std::vector<float> out = ApplyOnce(**t, img, rng);
    bool equal = true;
    for (int p = 0; p < 16; ++p) equal &= out[p] == out[16 + p] && out[p] == out[32 + p];
    gray += equal;
  }
  EXPECT_NEAR(gray / static_cast<double>(n), 0.2, 0.025);
}

TEST(TransformTest, BrightnessJitterFactorsAndRate) {
  DataConfig c = Plain(3);
  c.mutable_augmentation()->set_brightness(0.4f);
  c.mutable_augmentation()->set_color_jitter_prob(0.8f);
  auto t = MakeTrainTransform(c, 1);
  ASSERT_TRUE(t.ok());
  Image img;
  img.Reshape(3, 3, 1);
  std::fill(img.pixels.begin(), img.pixels.end(), 102);  // 0.4
  int changed = 0;
  double sum = 0, lo = 10, hi = -10;
  const int n = 5000;
  for (int i = 0; i < n; ++i) {
    std::mt19937_64 rng = SampleRng(2, 0, i, 0);
    const std::vector<float> out = ApplyOnce(**t, img, rng);
    const float f = out[0] / 0.4f;
    if (out[0] != 0.4f) {
      ++changed;
      sum += f;
      lo = std::min<double>(lo, f);
      hi = std::max<double>(hi, f);
    }
  }
  EXPECT_NEAR(changed / static_cast<double>(n), 0.8, 0.025);
  EXPECT_NEAR(sum / changed, 1.0, 0.02);  // factor uniform on [0.6, 1.4]
  EXPECT_GE(lo, 0.6 - 1e-5);
  EXPECT_LE(hi, 1.4 + 1e-5);
  EXPECT_LT(lo, 0.62);
  EXPECT_GT(hi, 1.38);
}

TEST(TransformTest, BlurRateAndDeterminism) {
  DataConfig c = Plain(16);
  c.mutable_augmentation()->set_blur_prob(0.5f);
  c.mutable_augmentation()->set_blur_sigma_min(0.5f);
  c.mutable_augmentation()->set_blur_sigma_max(1.0f);
  auto t = MakeTrainTransform(c, 3);
  ASSERT_TRUE(t.ok());
  const Image img = ColorImage(16, 16);
  std::mt19937_64 r0(0);
  const std::vector<float> plain = ApplyOnce(**MakeTrainTransform(Plain(16), 3), img, r0);
  int blurred = 0;
  const int n = 2000;
  for (int i = 0; i < n; ++i) {
    std::mt19937_64 rng = SampleRng(1, 0, i, 0);
    std::mt19937_64 again = SampleRng(1, 0, i, 0);
    const std::vector<float> out = ApplyOnce(**t, img, rng);
    ASSERT_EQ(out, ApplyOnce(**t, img, again));  // same stream, same output
    blurred += out != plain;
  }
  EXPECT_NEAR(blurred / static_cast<double>(n), 0.5, 0.045);
}

// MoCo v3's asymmetric views: view 2 alone is solarized here; everything else (crop, draws)
// is shared, so view 2 is exactly view 1 solarized at 128/255.
TEST(TransformTest, SecondViewUsesItsOwnSolarizeProbability) {
  DataConfig c = Plain(12);
  c.mutable_augmentation()->set_solarize_prob(0.0f);
  c.mutable_augmentation()->set_view2_solarize_prob(1.0f);
  auto t = MakeTrainTransform(c, 3);
  ASSERT_TRUE(t.ok()) << t.status();
  const Image img = ColorImage(12, 12);
  const size_t n = 3 * 12 * 12;
  std::vector<float> v1(n), v2(n);
  std::mt19937_64 r1(5), r2(5);
  (*t)->ApplyView(0, img, r1, v1.data());
  (*t)->ApplyView(1, img, r2, v2.data());
  int changed = 0;
  for (size_t i = 0; i < n; ++i) {
    const float expected = v1[i] >= 128.0f / 255.0f ? 1.0f - v1[i] : v1[i];
    ASSERT_EQ(v2[i], expected) << i;
    changed += v2[i] != v1[i];
  }
  EXPECT_GT(changed, 50);  // the test image has many bright pixels
  // Apply is view 1.
  std::vector<float> again(n);
  std::mt19937_64 r3(5);
  (*t)->Apply(img, r3, again.data());
  EXPECT_EQ(again, v1);
}

TEST(TransformTest, SolarizeProbabilityOutsideZeroOneIsRejected) {
  DataConfig c = Plain(8);
  c.mutable_augmentation()->set_view2_solarize_prob(1.5f);
  auto t = MakeTrainTransform(c, 3);
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("view2_solarize_prob"));
}

TEST(TransformTest, MocoV2PresetProducesNormalizedViewsThatDiffer) {
  DataConfig c;
  c.set_image_size(32);
  c.mutable_augmentation()->set_preset(AugmentationConfig::MOCO_V2);
  auto t = MakeTrainTransform(c, 3);
  ASSERT_TRUE(t.ok()) << t.status();
  const Image img = ColorImage(40, 56);
  std::mt19937_64 a = SampleRng(0, 0, 7, 0), b = SampleRng(0, 0, 7, 1);
  const std::vector<float> va = ApplyOnce(**t, img, a), vb = ApplyOnce(**t, img, b);
  EXPECT_NE(va, vb);
  for (float v : va) {
    ASSERT_TRUE(std::isfinite(v));
    ASSERT_GE(v, (0 - 0.485f) / 0.229f - 1e-4);  // inside the normalized [0, 1] range
    ASSERT_LE(v, (1 - 0.406f) / 0.225f + 1e-4);
  }
}

TEST(TransformTest, ChannelConversion) {
  // 3-channel image, 1-channel model: luminance.
  auto to_gray = MakeTrainTransform(Plain(4), 1);
  ASSERT_TRUE(to_gray.ok());
  const Image img = ColorImage(4, 4);
  std::mt19937_64 rng(0);
  const std::vector<float> g = ApplyOnce(**to_gray, img, rng);
  ASSERT_EQ(g.size(), 16u);
  for (int p = 0; p < 16; ++p) {
    const float want = 0.2989f * img.pixels[3 * p] / 255 + 0.587f * img.pixels[3 * p + 1] / 255 +
                       0.114f * img.pixels[3 * p + 2] / 255;
    EXPECT_NEAR(g[p], want, 1e-6);
  }
  // 1-channel image, 3-channel model: replicated.
  auto to_rgb = MakeTrainTransform(Plain(4), 3);
  Image gray;
  gray.Reshape(4, 4, 1);
  for (int p = 0; p < 16; ++p) gray.pixels[p] = static_cast<uint8_t>(p * 15);
  const std::vector<float> rgb = ApplyOnce(**to_rgb, gray, rng);
  for (int p = 0; p < 16; ++p) {
    EXPECT_EQ(rgb[p], gray.pixels[p] / 255.0f);
    EXPECT_EQ(rgb[16 + p], rgb[p]);
    EXPECT_EQ(rgb[32 + p], rgb[p]);
  }
}

TEST(TransformTest, EvalTransformMatchesTorchvisionResizeCenterCrop) {
  const auto goldens = ReadGoldensOrDie("data/testdata/image_ops_goldens.txt");
  const GoldenArray& in = goldens.at("input_rgb");
  Image img;
  img.Reshape(in.h, in.w, in.c);
  for (size_t i = 0; i < in.v.size(); ++i) img.pixels[i] = static_cast<uint8_t>(in.v[i]);
  DataConfig c = Plain(6);
  c.set_dataset(DataConfig::IMAGE_FOLDER);
  auto t = MakeEvalTransform(c, 3);
  ASSERT_TRUE(t.ok()) << t.status();
  std::mt19937_64 rng(0);
  const std::vector<float> out = ApplyOnce(**t, img, rng);
  const GoldenArray& want = goldens.at("eval_resize7_crop6");
  ASSERT_EQ(out.size(), want.v.size());
  for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], want.v[i], 2e-6) << i;
  // Already at image_size: identity.
  DataConfig c8 = Plain(8);
  c8.set_dataset(DataConfig::IMAGE_FOLDER);
  const Image square = ColorImage(8, 8);
  const std::vector<float> same = ApplyOnce(**MakeEvalTransform(c8, 3), square, rng);
  for (int p = 0; p < 64; ++p) EXPECT_EQ(same[64 + p], square.pixels[3 * p + 1] / 255.0f);
}

TEST(TransformTest, ConfigErrorsNameTheField) {
  DataConfig c = Plain(8);
  c.mutable_augmentation()->set_crop_scale_min(0);
  auto bad = MakeTrainTransform(c, 3);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("data.augmentation.crop_scale_min"));
  DataConfig n = Plain(8);
  n.mutable_augmentation()->add_normalize_mean(0.1f);
  n.mutable_augmentation()->add_normalize_mean(0.2f);
  n.mutable_augmentation()->add_normalize_std(1);
  n.mutable_augmentation()->add_normalize_std(1);
  auto two = MakeEvalTransform(n, 3);
  ASSERT_FALSE(two.ok());
  EXPECT_THAT(two.status().message(), HasSubstr("data.augmentation.normalize_mean"));
  DataConfig h = Plain(8);
  h.mutable_augmentation()->set_hue(0.7f);
  EXPECT_THAT(MakeTrainTransform(h, 3).status().message(), HasSubstr("data.augmentation.hue"));
  EXPECT_THAT(MakeTrainTransform(Plain(8), 2).status().message(), HasSubstr("model.in_channels"));
  EXPECT_THAT(MakeTrainTransform(Plain(0), 3).status().message(), HasSubstr("data.image_size"));
}

}  // namespace
}  // namespace data
}  // namespace moco
