#include "eval/linear_probe_eval.h"

#include <cmath>

#include "gtest/gtest.h"
#include "moco/config/augmentation_presets.h"

namespace moco {
namespace eval {
namespace {

TEST(StandardizeFeaturesTest, UsesTrainStatisticsForBoth) {
  // Column 0 of train: 1, 3 -> mean 2, variance 1; column 1: 5, 5 -> mean 5, variance 0.
  HostArray train({2, 2}, {1, 5, 3, 5});
  HostArray test({1, 2}, {4, 6});
  StandardizeFeatures(train, test);
  const double s0 = 1 / std::sqrt(1 + 1e-5), s1 = 1 / std::sqrt(1e-5);
  EXPECT_NEAR(train.data()[0], -s0, 1e-5);
  EXPECT_NEAR(train.data()[2], s0, 1e-5);
  EXPECT_EQ(train.data()[1], 0.0f);
  EXPECT_NEAR(test.data()[0], 2 * s0, 1e-5);  // (4 - 2) / sqrt(1 + eps)
  EXPECT_NEAR(test.data()[1], s1, 1e-2);       // (6 - 5) / sqrt(eps)
}

TEST(ProtocolTrainAugmentationTest, CropAndFlipOnlyWithTheConfigNormalization) {
  DataConfig data;
  data.set_image_size(28);
  data.mutable_augmentation()->set_preset(AugmentationConfig::MOCO_V2);
  data.mutable_augmentation()->add_normalize_mean(0.3f);
  data.mutable_augmentation()->add_normalize_std(0.4f);
  const AugmentationConfig a = ResolveAugmentation(ProtocolTrainAugmentation(data).augmentation());
  EXPECT_FLOAT_EQ(a.crop_scale_min(), 0.08f);
  EXPECT_FLOAT_EQ(a.crop_scale_max(), 1.0f);
  EXPECT_FLOAT_EQ(a.crop_ratio_min(), 0.75f);
  EXPECT_FLOAT_EQ(a.crop_ratio_max(), 4.0f / 3.0f);
  EXPECT_FLOAT_EQ(a.hflip_prob(), 0.5f);
  EXPECT_EQ(a.color_jitter_prob(), 0.0f);
  EXPECT_EQ(a.grayscale_prob(), 0.0f);
  EXPECT_EQ(a.blur_prob(), 0.0f);
  ASSERT_EQ(a.normalize_mean_size(), 1);
  EXPECT_FLOAT_EQ(a.normalize_mean(0), 0.3f);
  EXPECT_FLOAT_EQ(a.normalize_std(0), 0.4f);
}

TEST(SgdOptionsFromConfigTest, ProtocolDefaults) {
  const SgdOptions o = SgdOptionsFromConfig(LinearConfig());
  EXPECT_DOUBLE_EQ(o.lr, 30.0);
  EXPECT_NEAR(o.momentum, 0.9, 1e-7);
  EXPECT_EQ(o.weight_decay, 0.0);
  EXPECT_EQ(o.epochs, 100);
  EXPECT_EQ(o.schedule, SgdOptions::Schedule::kMultiStep);
  EXPECT_EQ(o.milestones, (std::vector<int>{60, 80}));
  LinearConfig cosine;
  cosine.set_schedule(LinearConfig::COSINE);
  EXPECT_EQ(SgdOptionsFromConfig(cosine).schedule, SgdOptions::Schedule::kCosine);
}

}  // namespace
}  // namespace eval
}  // namespace moco
