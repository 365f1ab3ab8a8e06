#include "eval/feature_extractor.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "moco/core/backend_registry.h"

namespace moco {
namespace eval {
namespace {

// 10 grayscale 4x4 images; image i has pixel (y, x) = 10 * i + 4 * y + x, label i % 3.
class TinyDataset final : public data::Dataset {
 public:
  int64_t size() const override { return 10; }
  int num_classes() const override { return 3; }
  int channels() const override { return 1; }
  int label(int64_t index) const override { return static_cast<int>(index % 3); }
  absl::Status ReadImage(int64_t index, data::Image* img) const override {
    img->Reshape(4, 4, 1);
    for (int p = 0; p < 16; ++p) img->pixels[p] = static_cast<uint8_t>(10 * index + p);
    return absl::OkStatus();
  }
  std::string Describe(int64_t index) const override { return absl::StrCat("tiny ", index); }
};

DataConfig TinyData() {
  DataConfig d;
  d.set_dataset(DataConfig::IDX);
  d.set_image_size(4);
  d.mutable_augmentation()->add_normalize_mean(0.5f);
  d.mutable_augmentation()->add_normalize_std(0.25f);
  return d;
}

ExtractOptions Options(int batch_size) {
  ExtractOptions o;
  o.loader.batch_size = batch_size;
  o.loader.num_workers = 2;
  o.loader.shuffle = true;  // ExtractFeatures must force dataset order anyway
  return o;
}

TEST(FeatureExtractorTest, RawPixelsAreNormalizedPixelsL2Normalized) {
  auto transform = data::MakeEvalTransform(TinyData(), 1);
  ASSERT_TRUE(transform.ok()) << transform.status();
  auto source = RawPixelFeatures();
  int calls = 0;
  ExtractOptions o = Options(4);
  o.on_batch = [&calls](int64_t done, int64_t total) {
    ++calls;
    EXPECT_EQ(total, 10);
  };
  auto set = ExtractFeatures(std::make_shared<TinyDataset>(), *transform, *source, o);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(calls, 3);  // batches of 4, 4, 2: the last partial batch is kept
  ASSERT_EQ(set->features.shape(), (std::vector<int64_t>{10, 16}));
  ASSERT_EQ(set->labels.size(), 10u);
  for (int64_t i = 0; i < 10; ++i) {
    EXPECT_EQ(set->labels[i], i % 3);
    // Reference: v_p = (pixel / 255 - 0.5) / 0.25, then divided by sqrt(sum v_p^2).
    double v[16], sq = 0;
    for (int p = 0; p < 16; ++p) {
      v[p] = ((10.0 * i + p) / 255.0 - 0.5) / 0.25;
      sq += v[p] * v[p];
    }
    for (int p = 0; p < 16; ++p) {
      EXPECT_NEAR(set->features.data()[i * 16 + p], v[p] / std::sqrt(sq), 1e-5) << i << "," << p;
    }
  }
}

TEST(FeatureExtractorTest, MaxImagesCapsInsideABatch) {
  auto transform = data::MakeEvalTransform(TinyData(), 1);
  auto source = RawPixelFeatures();
  ExtractOptions o = Options(4);
  o.max_images = 6;
  auto set = ExtractFeatures(std::make_shared<TinyDataset>(), *transform, *source, o);
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->features.shape(), (std::vector<int64_t>{6, 16}));
  EXPECT_EQ(set->labels, (std::vector<int64_t>{0, 1, 2, 0, 1, 2}));
}

TEST(FeatureExtractorTest, EncoderFeaturesAreTheBackboneFeatures) {
  auto backend = CreateBackend("torch", BackendOptions{"cpu", 1});
  ASSERT_TRUE(backend.ok()) << backend.status();
  ModelConfig model;
  model.set_arch("resnet18");
  model.set_cifar_stem(true);
  model.set_width_multiplier(0.0625f);
  model.set_in_channels(1);
  model.set_feature_dim(8);
  auto encoder = (*backend)->CreateEncoder(model, 3);
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  auto transform = data::MakeEvalTransform(TinyData(), 1);
  auto source = EncoderFeatures(**backend, **encoder);
  auto set = ExtractFeatures(std::make_shared<TinyDataset>(), *transform, *source, Options(3));
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_EQ(set->features.shape(),
            (std::vector<int64_t>{10, (*encoder)->backbone_dim()}));
  // The same images in one batch of 10 through the encoder directly: same features (BN in eval
  // mode makes each image's features independent of its batch).
  HostArray images({10, 1, 4, 4});
  for (int64_t i = 0; i < 10; ++i)
    for (int p = 0; p < 16; ++p) images.mutable_data()[i * 16 + p] = ((10.0f * i + p) / 255.0f - 0.5f) / 0.25f;
  auto direct = (*encoder)->BackboneFeatures(**(*backend)->Upload(images));
  ASSERT_TRUE(direct.ok()) << direct.status();
  auto host = (*direct)->ToHost();
  ASSERT_TRUE(host.ok());
  ASSERT_EQ(host->data().size(), set->features.data().size());
  for (size_t i = 0; i < host->data().size(); ++i) {
    EXPECT_NEAR(set->features.data()[i], host->data()[i], 1e-4 * (1 + std::fabs(host->data()[i])));
  }
}

TEST(FeatureExtractorTest, L2NormalizeKeepsZeroRows) {
  HostArray a({2, 2}, {3, 4, 0, 0});
  L2NormalizeRows(a);
  EXPECT_FLOAT_EQ(a.data()[0], 0.6f);
  EXPECT_FLOAT_EQ(a.data()[1], 0.8f);
  EXPECT_EQ(a.data()[2], 0.0f);
  EXPECT_EQ(a.data()[3], 0.0f);
}

// One process keeps the last partial batch; sharded passes keep whole global batches only.
TEST(FeatureExtractorTest, PlanFeaturePassRoundsToWholeGlobalBatchesWhenSharded) {
  ExtractOptions o;
  o.loader.batch_size = 4;
  const auto plan = [&](int64_t size) {
    const FeaturePass p = PlanFeaturePass(size, o);
    return std::make_pair(p.images, p.batches);
  };
  o.loader.world_size = 1;
  EXPECT_EQ(plan(10), std::make_pair(int64_t{10}, int64_t{3}));
  EXPECT_EQ(plan(8), std::make_pair(int64_t{8}, int64_t{2}));
  o.loader.world_size = 2;
  EXPECT_EQ(plan(10), std::make_pair(int64_t{8}, int64_t{2}));
  EXPECT_EQ(plan(3), std::make_pair(int64_t{0}, int64_t{0}));
  o.max_images = 9;  // the cap applies before the rounding
  EXPECT_EQ(plan(100), std::make_pair(int64_t{8}, int64_t{2}));
  o.loader.world_size = 1;
  EXPECT_EQ(plan(100), std::make_pair(int64_t{9}, int64_t{3}));
  EXPECT_EQ(plan(5), std::make_pair(int64_t{5}, int64_t{2}));
}

}  // namespace
}  // namespace eval
}  // namespace moco
