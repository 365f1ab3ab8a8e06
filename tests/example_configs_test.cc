// Every shipped example config parses and validates. The quickstart must also pass the path
// checks on this machine (its dataset comes from Debian's dataset-fashion-mnist); the others
// point at datasets a user downloads, so their paths are not checked here.
#include <filesystem>
#include <string>

#include "gtest/gtest.h"
#include "moco/config/config_io.h"
#include "moco/core/cpu_features.h"
#include "moco/validation/config_validator.h"

namespace moco {
namespace {

class ExampleConfigTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ExampleConfigTest, LoadsAndValidates) {
  const std::string path = "configs/" + GetParam();
  absl::StatusOr<ExperimentConfig> config = LoadExperimentConfig(path);
  ASSERT_TRUE(config.ok()) << config.status();
  ValidationOptions options;
  options.check_paths = GetParam() == "quickstart.pbtxt" ||
                        GetParam() == "quickstart_bf16.pbtxt" ||
                        GetParam() == "moco_v3_quickstart.pbtxt" ||
                        GetParam() == "moco_v3_vit_quickstart.pbtxt";
  absl::Status status = ValidateExperimentConfig(*config, options, path);
  if (config->backend().precision() == BackendConfig::BF16 &&
      !Bf16CpuProblem(CpuFlags()).empty()) {
    // A CPU without bf16 instructions: the one error must be that, naming the field.
    EXPECT_NE(std::string(status.message()).find("backend.precision (BF16) needs a CPU"),
              std::string::npos)
        << status;
    return;
  }
  EXPECT_TRUE(status.ok()) << status;
}

INSTANTIATE_TEST_SUITE_P(Configs, ExampleConfigTest,
                         ::testing::Values("quickstart.pbtxt", "quickstart_bf16.pbtxt",
                                           "moco_v1_imagenet.pbtxt",
                                           "moco_v2_imagenet.pbtxt", "moco_cifar10.pbtxt",
                                           "moco_v3_quickstart.pbtxt",
                                           "moco_v3_r50_imagenet.pbtxt",
                                           "moco_v3_vit_quickstart.pbtxt",
                                           "moco_v3_vit_small_imagenet.pbtxt"));

TEST(ExampleConfigsTest, EveryShippedConfigIsCovered) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator("configs")) {
    if (entry.path().extension() == ".pbtxt") ++count;
  }
  EXPECT_EQ(count, 9) << "a config was added to configs/: add it to the list above";
}

TEST(ExampleConfigsTest, V3RecipeIsThePapers) {
  absl::StatusOr<ExperimentConfig> v3 = LoadExperimentConfig("configs/moco_v3_r50_imagenet.pbtxt");
  ASSERT_TRUE(v3.ok()) << v3.status();
  EXPECT_EQ(v3->moco().method(), "moco_v3");
  EXPECT_FLOAT_EQ(v3->moco().temperature(), 1.0f);
  EXPECT_FLOAT_EQ(v3->moco().momentum(), 0.99f);
  EXPECT_TRUE(v3->moco().momentum_cosine_schedule());
  EXPECT_EQ(v3->optimizer().algorithm(), OptimizerConfig::LARS);
  EXPECT_FLOAT_EQ(v3->optimizer().lr(), 0.6f * 4096 / 256);
  EXPECT_FLOAT_EQ(v3->optimizer().weight_decay(), 1e-6f);
  EXPECT_EQ(v3->optimizer().schedule(), OptimizerConfig::COSINE_PER_STEP);
  EXPECT_FLOAT_EQ(v3->optimizer().warmup_epochs(), 10);
  EXPECT_EQ(v3->run().batch_size(), 4096);
  EXPECT_EQ(v3->model().projector_hidden_dim(), 4096);
  EXPECT_EQ(v3->model().predictor_hidden_dim(), 4096);
  EXPECT_EQ(v3->model().feature_dim(), 256);
  EXPECT_TRUE(v3->model().zero_init_residual());
}

TEST(ExampleConfigsTest, V3ViTRecipeIsThePapers) {
  absl::StatusOr<ExperimentConfig> v3 =
      LoadExperimentConfig("configs/moco_v3_vit_small_imagenet.pbtxt");
  ASSERT_TRUE(v3.ok()) << v3.status();
  EXPECT_EQ(v3->model().arch(), "vit_small");
  EXPECT_EQ(v3->model().image_size(), 224);
  EXPECT_TRUE(v3->model().stop_grad_conv1());
  EXPECT_EQ(v3->moco().method(), "moco_v3");
  EXPECT_FLOAT_EQ(v3->moco().temperature(), 0.2f);
  EXPECT_FLOAT_EQ(v3->moco().momentum(), 0.99f);
  EXPECT_TRUE(v3->moco().momentum_cosine_schedule());
  EXPECT_EQ(v3->optimizer().algorithm(), OptimizerConfig::ADAMW);
  EXPECT_FLOAT_EQ(v3->optimizer().lr(), 1.5e-4f * 4096 / 256);
  EXPECT_FLOAT_EQ(v3->optimizer().weight_decay(), 0.1f);
  EXPECT_FLOAT_EQ(v3->optimizer().warmup_epochs(), 40);
  EXPECT_EQ(v3->run().epochs(), 300);
  EXPECT_EQ(v3->run().batch_size(), 4096);
  EXPECT_EQ(v3->model().feature_dim(), 256);
  EXPECT_EQ(v3->model().projector_hidden_dim(), 4096);
  EXPECT_EQ(v3->model().predictor_hidden_dim(), 4096);
  EXPECT_FLOAT_EQ(v3->data().augmentation().crop_scale_min(), 0.08f);
}

TEST(ExampleConfigsTest, PaperValuesAreThePapers) {
  absl::StatusOr<ExperimentConfig> v1 = LoadExperimentConfig("configs/moco_v1_imagenet.pbtxt");
  absl::StatusOr<ExperimentConfig> v2 = LoadExperimentConfig("configs/moco_v2_imagenet.pbtxt");
  ASSERT_TRUE(v1.ok() && v2.ok());
  EXPECT_EQ(v1->moco().queue_size(), 65536);
  EXPECT_FLOAT_EQ(v1->moco().temperature(), 0.07f);
  EXPECT_FLOAT_EQ(v2->moco().temperature(), 0.2f);
  EXPECT_FLOAT_EQ(v1->moco().momentum(), 0.999f);
  EXPECT_FALSE(v1->model().mlp_head());
  EXPECT_TRUE(v2->model().mlp_head());
  EXPECT_EQ(v1->optimizer().schedule(), OptimizerConfig::MULTI_STEP);
  EXPECT_EQ(v2->optimizer().schedule(), OptimizerConfig::COSINE);
  EXPECT_EQ(v2->data().augmentation().preset(), AugmentationConfig::MOCO_V2);
}

}  // namespace
}  // namespace moco
