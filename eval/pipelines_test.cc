// End-to-end tests of the knn and linear_probe pipelines on a tiny generated IDX dataset and a
// checkpoint written from a tiny LibTorch encoder.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/test_util.h"
#include "eval/knn_eval.h"
#include "eval/linear_probe_eval.h"
#include "eval/pipeline_test_fixture.h"
#include "eval/results_writer.h"
#include "gtest/gtest.h"
#include "moco/config/config_io.h"

namespace moco {
namespace eval {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class PipelinesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = data::MakeTempDir("eval_pipelines");
    WriteThreeClassIdxSplit(dir_, "train", 150, 1);
    WriteThreeClassIdxSplit(dir_, "t10k", 60, 2);
    checkpoint_ = dir_ + "/run/checkpoint.ckpt";
    std::filesystem::create_directories(dir_ + "/run");
    WriteTinyCheckpoint(checkpoint_, /*config_width=*/0.0625f);
    checkpoint_bytes_ = ReadAll(checkpoint_);
  }

  void WriteTinyCheckpoint(const std::string& path, float config_width) {
    const absl::Status written = WriteTinyEvalCheckpoint(path, config_width);
    ASSERT_TRUE(written.ok()) << written;
  }

  EvalConfig Config() const { return TinyEvalConfig(dir_, checkpoint_); }

  std::string WriteConfig(const EvalConfig& c, const std::string& name = "eval.pbtxt") {
    const std::string path = dir_ + "/" + name;
    data::WriteFileOrDie(path, ToTextProto(c));
    return path;
  }

  std::string dir_, checkpoint_, checkpoint_bytes_;
};

void ExpectThreeEncoders(const EvalResults& r) {
  ASSERT_EQ(r.results_size(), 3);
  EXPECT_EQ(r.results(0).encoder(), "LEARNED");
  EXPECT_EQ(r.results(1).encoder(), "RANDOM_INIT");
  EXPECT_EQ(r.results(2).encoder(), "RAW_PIXELS");
  for (const auto& e : r.results()) {
    EXPECT_EQ(e.test_images(), 60);
    EXPECT_EQ(e.train_images(), 150);
    EXPECT_GE(e.top1(), 0.0);
    EXPECT_LE(e.top1(), e.top5());
  }
  EXPECT_EQ(r.results(0).feature_dim(), 32);  // 512 * 0.0625 backbone channels
  EXPECT_EQ(r.results(2).feature_dim(), 64);  // 8 x 8 pixels
  // The blocks are obvious in pixel space.
  EXPECT_GT(r.results(2).top1(), 0.9);
  EXPECT_EQ(r.results(2).top5(), 1.0);  // 3 classes
}

TEST_F(PipelinesTest, KnnReportsAllEncodersAndWritesResults) {
  auto r = RunKnnEval(WriteConfig(Config()));
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectThreeEncoders(*r);
  EXPECT_EQ(r->checkpoint_epoch(), 2);
  EXPECT_EQ(r->checkpoint_config().model().width_multiplier(), 0.0625f);
  EvalResults written;
  ASSERT_TRUE(ParseTextProtoFile(dir_ + "/results/knn_results.pbtxt", &written).ok());
  EXPECT_EQ(written.results_size(), 3);
  EXPECT_EQ(written.results(2).top1(), r->results(2).top1());
  EXPECT_EQ(written.eval_config().knn().k(), 5);
  EXPECT_EQ(ReadAll(checkpoint_), checkpoint_bytes_);  // the checkpoint is untouched
}

TEST_F(PipelinesTest, LinearProbeOnFeaturesVerifiesTheBackbone) {
  auto r = RunLinearProbeEval(WriteConfig(Config()));
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectThreeEncoders(*r);
  EXPECT_TRUE(r->backbone_unchanged_verified());
  EXPECT_GE(r->results(2).final_train_loss(), 0.0);
  EXPECT_LT(r->results(2).final_train_loss(), 0.1);  // log(3) = 1.1 at the start
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/results/linear_probe_results.pbtxt"));
  EXPECT_EQ(ReadAll(checkpoint_), checkpoint_bytes_);
}

TEST_F(PipelinesTest, LinearProbeAugmentedMode) {
  EvalConfig c = Config();
  c.set_encoders(EvalConfig::LEARNED);
  c.mutable_linear()->set_mode(LinearConfig::AUGMENTED);
  c.mutable_linear()->set_standardize_features(false);
  c.mutable_linear()->set_epochs(2);
  c.mutable_linear()->set_schedule(LinearConfig::MULTI_STEP);
  c.mutable_linear()->add_milestones(1);
  auto r = RunLinearProbeEval(WriteConfig(c));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->results_size(), 1);
  EXPECT_EQ(r->results(0).encoder(), "LEARNED");
  EXPECT_EQ(r->results(0).train_images(), 150);
  EXPECT_EQ(r->results(0).test_images(), 60);
  EXPECT_TRUE(r->backbone_unchanged_verified());
}

TEST_F(PipelinesTest, EigenBackendEvaluatesATorchCheckpointAlike) {
  // Same parameter names in both backends: the torch-written checkpoint loads into the Eigen
  // encoder, and kNN on its features matches the torch backend's result.
  EvalConfig c = Config();
  c.set_encoders(EvalConfig::LEARNED);
  auto torch = RunKnnEval(WriteConfig(c, "torch.pbtxt"));
  ASSERT_TRUE(torch.ok()) << torch.status();
  c.mutable_backend()->set_name("eigen");
  auto eigen = RunKnnEval(WriteConfig(c, "eigen.pbtxt"));
  ASSERT_TRUE(eigen.ok()) << eigen.status();
  EXPECT_NEAR(eigen->results(0).top1(), torch->results(0).top1(), 1.5 / 60);  // <= 1 image
  EXPECT_EQ(eigen->eval_config().backend().name(), "eigen");
}

TEST_F(PipelinesTest, KnnEvaluatesAReleasedStyleOfficialCheckpointDirectly) {
  // moco/interop/testdata/make_torch_files.py: torch.save legacy format (as the released
  // MoCo checkpoints), official layout, no optimizer; a 1-channel CIFAR-stem resnet18 at width
  // 1/32 with a v1 linear head. The architecture comes from the names and shapes.
  EvalConfig c = Config();
  c.set_checkpoint("moco/interop/testdata/moco_v1_gray_legacy.pth.tar");
  c.set_encoders(EvalConfig::LEARNED);
  for (const char* backend : {"torch", "eigen"}) {
    c.mutable_backend()->set_name(backend);
    auto r = RunKnnEval(WriteConfig(c, std::string(backend) + "_official.pbtxt"));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->results_size(), 1);
    EXPECT_EQ(r->results(0).feature_dim(), 16);  // 512 / 32 backbone channels
    EXPECT_EQ(r->results(0).test_images(), 60);
    EXPECT_EQ(r->checkpoint_epoch(), 200);
    EXPECT_EQ(r->checkpoint_config().model().in_channels(), 1);
    EXPECT_TRUE(r->checkpoint_config().model().cifar_stem());
    EXPECT_FALSE(r->checkpoint_config().model().mlp_head());
  }
}

TEST_F(PipelinesTest, CapsOnImages) {
  EvalConfig c = Config();
  c.set_encoders(EvalConfig::RAW_PIXELS);
  c.set_max_train_images(70);
  c.set_max_test_images(20);
  auto r = RunKnnEval(WriteConfig(c));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->results(0).train_images(), 70);
  EXPECT_EQ(r->results(0).test_images(), 20);
}

TEST_F(PipelinesTest, CorruptedCheckpointNamesTheFileAndWritesNothing) {
  std::filesystem::resize_file(checkpoint_, checkpoint_bytes_.size() - 100);
  for (auto run : {RunKnnEval, RunLinearProbeEval}) {
    auto r = run(WriteConfig(Config()), 300);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
    EXPECT_NE(r.status().message().find(checkpoint_), std::string::npos) << r.status();
  }
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/results"));
}

TEST_F(PipelinesTest, MissingCheckpointIsAConfigError) {
  EvalConfig c = Config();
  c.set_checkpoint(dir_ + "/run/nope.ckpt");
  auto r = RunKnnEval(WriteConfig(c));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("checkpoint (" + dir_ + "/run/nope.ckpt) does not exist"),
            std::string::npos)
      << r.status();
}

TEST_F(PipelinesTest, CheckpointOfAnotherArchitectureNamesFileAndParameter) {
  const std::string other = dir_ + "/run/other.ckpt";
  WriteTinyCheckpoint(other, /*config_width=*/0.125f);
  EvalConfig c = Config();
  c.set_checkpoint(other);
  c.set_encoders(EvalConfig::LEARNED);
  auto r = RunLinearProbeEval(WriteConfig(c));
  ASSERT_FALSE(r.ok());
  const std::string message(r.status().message());
  EXPECT_NE(message.find("checkpoint " + other + " does not fit its architecture"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("has shape"), std::string::npos) << message;
}

TEST_F(PipelinesTest, InvalidConfigListsFieldPaths) {
  EvalConfig c = Config();
  c.mutable_knn()->set_k(0);
  c.mutable_backend()->set_name("nonexistent");
  const std::string path = WriteConfig(c);
  auto r = RunKnnEval(path);
  ASSERT_FALSE(r.ok());
  const std::string message(r.status().message());
  EXPECT_NE(message.find(path + ": 2 config errors"), std::string::npos) << message;
  EXPECT_NE(message.find("knn.k (0) must be > 0"), std::string::npos) << message;
  EXPECT_NE(message.find("backend.name (nonexistent)"), std::string::npos) << message;
}

TEST_F(PipelinesTest, NormalizationMustFitTheCheckpointChannels) {
  EvalConfig c = Config();
  for (int i = 0; i < 2; ++i) {
    c.mutable_data()->mutable_augmentation()->add_normalize_mean(0.5f);
    c.mutable_data()->mutable_augmentation()->add_normalize_std(0.25f);
  }
  auto r = RunKnnEval(WriteConfig(c));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("normalize_mean has 3 values but the checkpoint's "
                                      "model.in_channels is 1"),
            std::string::npos)
      << r.status();
}

}  // namespace
}  // namespace eval
}  // namespace moco
