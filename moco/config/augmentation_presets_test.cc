#include "moco/config/augmentation_presets.h"

#include "gtest/gtest.h"

namespace moco {
namespace {

TEST(AugmentationPresetsTest, V2IsAugPlus) {
  AugmentationConfig in;
  in.set_preset(AugmentationConfig::MOCO_V2);
  const AugmentationConfig a = ResolveAugmentation(in);
  EXPECT_FLOAT_EQ(a.crop_scale_min(), 0.2f);
  EXPECT_FLOAT_EQ(a.crop_ratio_min(), 0.75f);
  EXPECT_FLOAT_EQ(a.crop_ratio_max(), 4.0f / 3.0f);
  EXPECT_FLOAT_EQ(a.hue(), 0.1f);
  EXPECT_FLOAT_EQ(a.color_jitter_prob(), 0.8f);
  EXPECT_FLOAT_EQ(a.grayscale_prob(), 0.2f);
  EXPECT_FLOAT_EQ(a.blur_prob(), 0.5f);
  EXPECT_FLOAT_EQ(a.blur_sigma_min(), 0.1f);
  EXPECT_FLOAT_EQ(a.blur_sigma_max(), 2.0f);
  ASSERT_EQ(a.normalize_mean_size(), 3);
  EXPECT_FLOAT_EQ(a.normalize_std(0), 0.229f);
}

TEST(AugmentationPresetsTest, V1HasStrongHueAndNoBlur) {
  AugmentationConfig in;
  in.set_preset(AugmentationConfig::MOCO_V1);
  const AugmentationConfig a = ResolveAugmentation(in);
  EXPECT_FLOAT_EQ(a.hue(), 0.4f);
  EXPECT_FLOAT_EQ(a.color_jitter_prob(), 1.0f);
  EXPECT_FLOAT_EQ(a.blur_prob(), 0.0f);
}

TEST(AugmentationPresetsTest, CifarUsesTorchvisionDefaultScaleAndNoBlur) {
  AugmentationConfig in;
  in.set_preset(AugmentationConfig::CIFAR);
  const AugmentationConfig a = ResolveAugmentation(in);
  EXPECT_FLOAT_EQ(a.crop_scale_min(), 0.08f);
  EXPECT_FLOAT_EQ(a.blur_prob(), 0.0f);
  EXPECT_FLOAT_EQ(a.normalize_mean(0), 0.4914f);
}

TEST(AugmentationPresetsTest, V3IsAsymmetricBlurAndSolarize) {
  AugmentationConfig in;
  in.set_preset(AugmentationConfig::MOCO_V3);
  const AugmentationConfig a = ResolveAugmentation(in);
  EXPECT_FLOAT_EQ(a.crop_scale_min(), 0.08f);
  EXPECT_FLOAT_EQ(a.brightness(), 0.4f);
  EXPECT_FLOAT_EQ(a.saturation(), 0.2f);
  EXPECT_FLOAT_EQ(a.hue(), 0.1f);
  EXPECT_FLOAT_EQ(a.color_jitter_prob(), 0.8f);
  EXPECT_FLOAT_EQ(a.blur_prob(), 1.0f);
  EXPECT_FLOAT_EQ(a.view2_blur_prob(), 0.1f);
  EXPECT_FLOAT_EQ(a.solarize_prob(), 0.0f);
  EXPECT_FLOAT_EQ(a.view2_solarize_prob(), 0.2f);
  // v2 leaves view 2 unset: both views share view 1's probabilities.
  AugmentationConfig v2;
  v2.set_preset(AugmentationConfig::MOCO_V2);
  EXPECT_FALSE(ResolveAugmentation(v2).has_view2_blur_prob());
}

TEST(AugmentationPresetsTest, ExplicitFieldsOverrideThePreset) {
  AugmentationConfig in;
  in.set_preset(AugmentationConfig::MOCO_V2);
  in.set_blur_prob(0.0f);  // explicitly zero must win over the preset's 0.5
  in.add_normalize_mean(0.5f);
  in.add_normalize_std(0.25f);
  const AugmentationConfig a = ResolveAugmentation(in);
  EXPECT_FLOAT_EQ(a.blur_prob(), 0.0f);
  EXPECT_FLOAT_EQ(a.hue(), 0.1f);
  ASSERT_EQ(a.normalize_mean_size(), 1);
  EXPECT_FLOAT_EQ(a.normalize_mean(0), 0.5f);
  EXPECT_FLOAT_EQ(a.normalize_std(0), 0.25f);
}

TEST(AugmentationPresetsTest, CustomIsIdentity) {
  const AugmentationConfig a = ResolveAugmentation([] {
    AugmentationConfig c;
    c.set_preset(AugmentationConfig::CUSTOM);
    return c;
  }());
  EXPECT_FLOAT_EQ(a.crop_scale_min(), 1.0f);
  EXPECT_FLOAT_EQ(a.hflip_prob(), 0.0f);
  EXPECT_FLOAT_EQ(a.color_jitter_prob(), 0.0f);
  EXPECT_EQ(a.normalize_mean_size(), 0);
}

}  // namespace
}  // namespace moco
