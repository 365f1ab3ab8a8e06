#include "eval/eval_config_validator.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "eval/eval_config_io.h"
#include "gtest/gtest.h"
#include "moco/core/cpu_features.h"
#include "moco/config/config_io.h"

namespace moco {
namespace eval {
namespace {

// A valid config whose paths exist on any machine (this test's own folder).
EvalConfig Valid() {
  EvalConfig c;
  const std::string dir = ::testing::TempDir();
  const std::string ckpt = dir + "/valid.ckpt";
  std::ofstream(ckpt) << "x";
  c.set_checkpoint(ckpt);
  c.mutable_data()->set_dataset(DataConfig::IDX);
  c.mutable_data()->set_train_path(dir);
  c.mutable_data()->set_image_size(28);
  c.mutable_data()->mutable_augmentation()->add_normalize_mean(0.5f);
  c.mutable_data()->mutable_augmentation()->add_normalize_std(0.25f);
  return c;
}

// The errors' field paths.
std::vector<std::string> Fields(const EvalConfig& c, EvalValidationOptions o = {}) {
  std::vector<std::string> fields;
  for (const ConfigError& e : FindEvalConfigErrors(c, o)) fields.push_back(e.field);
  return fields;
}

// Expects exactly one error, on `field`, whose message contains `text`.
void ExpectOneError(const EvalConfig& c, const std::string& field, const std::string& text) {
  const std::vector<ConfigError> errors = FindEvalConfigErrors(c);
  ASSERT_EQ(errors.size(), 1u) << (errors.empty() ? "no error" : errors[0].message);
  EXPECT_EQ(errors[0].field, field);
  EXPECT_NE(errors[0].message.find(text), std::string::npos) << errors[0].message;
}

TEST(EvalConfigValidatorTest, ValidConfigAndDefaults) {
  const EvalConfig c = Valid();
  EXPECT_TRUE(FindEvalConfigErrors(c).empty());
  EXPECT_EQ(c.knn().k(), 200);
  EXPECT_FLOAT_EQ(c.knn().temperature(), 0.1f);
  EXPECT_FLOAT_EQ(c.linear().lr(), 30.0f);
  EXPECT_FLOAT_EQ(c.linear().momentum(), 0.9f);
  EXPECT_EQ(c.linear().weight_decay(), 0.0f);
  EXPECT_EQ(c.linear().epochs(), 100);
  EXPECT_EQ(EffectiveMilestones(c.linear()), (std::vector<int>{60, 80}));
  EXPECT_EQ(c.linear().batch_size(), 256);
  EXPECT_EQ(c.linear().mode(), LinearConfig::AUGMENTED);
  EXPECT_EQ(c.encoders(), EvalConfig::ALL);
  EXPECT_EQ(SelectedEncoders(c).size(), 3u);
}

TEST(EvalConfigValidatorTest, Checkpoint) {
  EvalConfig c = Valid();
  c.clear_checkpoint();
  ExpectOneError(c, "checkpoint", "checkpoint must be set");
  c.set_checkpoint("/nonexistent/run/checkpoint.ckpt");
  ExpectOneError(c, "checkpoint", "checkpoint (/nonexistent/run/checkpoint.ckpt) does not exist");
  c.set_checkpoint(::testing::TempDir());
  ExpectOneError(c, "checkpoint", "is not a regular file");
  c.set_checkpoint("/nonexistent/run/checkpoint.ckpt");
  EvalValidationOptions no_paths;
  no_paths.check_paths = false;
  EXPECT_TRUE(Fields(c, no_paths).empty());
}

TEST(EvalConfigValidatorTest, Data) {
  EvalConfig c = Valid();
  c.clear_data();
  ExpectOneError(c, "data", "data must be set");
  c = Valid();
  c.mutable_data()->clear_dataset();
  ExpectOneError(c, "data.dataset", "must be set to IDX");
  c = Valid();
  c.mutable_data()->clear_train_path();
  ExpectOneError(c, "data.train_path", "must be set");
  c = Valid();
  c.mutable_data()->set_train_path("/nonexistent/fmnist");
  ExpectOneError(c, "data.train_path", "(/nonexistent/fmnist) does not exist");
  c = Valid();
  c.mutable_data()->set_test_path("/nonexistent/test");
  ExpectOneError(c, "data.test_path", "does not exist");
  c = Valid();
  c.mutable_data()->set_dataset(DataConfig::IMAGE_FOLDER);
  ExpectOneError(c, "data.test_path", "must be set for IMAGE_FOLDER");
  c = Valid();
  c.mutable_data()->set_image_size(0);
  ExpectOneError(c, "data.image_size", "(0) must be in [1, 4096]");
  c = Valid();
  c.mutable_data()->set_num_workers(0);
  ExpectOneError(c, "data.num_workers", "(0) must be in [1, 256]");
  c = Valid();
  c.mutable_data()->set_prefetch_batches(100);
  ExpectOneError(c, "data.prefetch_batches", "(100) must be in [1, 64]");
  c = Valid();
  c.mutable_data()->mutable_augmentation()->add_normalize_mean(0.5f);
  c.mutable_data()->mutable_augmentation()->add_normalize_std(0.5f);
  ExpectOneError(c, "data.augmentation.normalize_mean", "(2 values) must have 1 or 3 values");
  c = Valid();
  c.mutable_data()->mutable_augmentation()->add_normalize_std(0.5f);
  c.mutable_data()->mutable_augmentation()->add_normalize_std(0.5f);
  ExpectOneError(c, "data.augmentation.normalize_std", "as many values as normalize_mean");
  c = Valid();
  c.mutable_data()->mutable_augmentation()->set_normalize_std(0, 0.0f);
  ExpectOneError(c, "data.augmentation.normalize_std[0]", "(0) must be > 0");
}

TEST(EvalConfigValidatorTest, Knn) {
  EvalConfig c = Valid();
  c.mutable_knn()->set_k(0);
  ExpectOneError(c, "knn.k", "knn.k (0) must be > 0");
  c = Valid();
  c.mutable_knn()->set_temperature(-0.1f);
  ExpectOneError(c, "knn.temperature", "(-0.1) must be > 0");
}

TEST(EvalConfigValidatorTest, Linear) {
  EvalConfig c = Valid();
  c.mutable_linear()->set_lr(0);
  ExpectOneError(c, "linear.lr", "must be > 0");
  c = Valid();
  c.mutable_linear()->set_momentum(1.0f);
  ExpectOneError(c, "linear.momentum", "must be in [0, 1)");
  c = Valid();
  c.mutable_linear()->set_weight_decay(-1);
  ExpectOneError(c, "linear.weight_decay", "must be >= 0");
  c = Valid();
  c.mutable_linear()->set_epochs(10);  // the default milestones 60, 80 no longer fit
  ExpectOneError(c, "linear.milestones",
                 "linear.milestones (60, 80) must each be in [1, linear.epochs = 10); empty "
                 "means 60, 80");
  c.mutable_linear()->set_epochs(0);
  EXPECT_EQ(Fields(c), (std::vector<std::string>{"linear.epochs", "linear.milestones"}));
  c = Valid();
  c.mutable_linear()->add_milestones(80);
  c.mutable_linear()->add_milestones(60);
  ExpectOneError(c, "linear.milestones", "(80, 60) must be strictly increasing");
  c.mutable_linear()->set_schedule(LinearConfig::COSINE);  // milestones unused
  EXPECT_TRUE(Fields(c).empty());
  c = Valid();
  c.mutable_linear()->set_gamma(0);
  ExpectOneError(c, "linear.gamma", "must be in (0, 1]");
  c = Valid();
  c.mutable_linear()->set_batch_size(0);
  ExpectOneError(c, "linear.batch_size", "must be > 0");
  c = Valid();
  c.mutable_linear()->set_standardize_features(true);
  ExpectOneError(c, "linear.standardize_features", "requires linear.mode FEATURES");
  c.mutable_linear()->set_mode(LinearConfig::FEATURES);
  EXPECT_TRUE(Fields(c).empty());
}

TEST(EvalConfigValidatorTest, BackendAndRun) {
  EvalConfig c = Valid();
  c.mutable_backend()->set_name("jax");
  ExpectOneError(c, "backend.name", "(jax) is not a backend of this binary (available: eigen, torch)");
  c = Valid();
  c.mutable_backend()->set_device("gpu");
  ExpectOneError(c, "backend.device", "(gpu) must be \"cpu\", \"cuda\" or \"cuda:N\" for the torch backend");
  c.mutable_backend()->set_device("cuda:1");
  EXPECT_TRUE(Fields(c).empty());
  c = Valid();
  c.set_results_dir(c.checkpoint());  // a file
  ExpectOneError(c, "results_dir", "exists and is not a folder");
  c = Valid();
  c.set_threads(-1);
  ExpectOneError(c, "threads", "(-1) must be in [0, 1024]");
  c = Valid();
  c.set_extract_batch_size(0);
  ExpectOneError(c, "extract_batch_size", "must be in [1, 65536]");
  c = Valid();
  c.set_max_train_images(-5);
  c.set_max_test_images(-5);
  EXPECT_EQ(Fields(c), (std::vector<std::string>{"max_train_images", "max_test_images"}));
}

TEST(EvalConfigValidatorTest, ReportsEveryErrorWithSource) {
  EvalConfig c = Valid();
  c.mutable_knn()->set_k(-1);
  c.mutable_linear()->set_lr(-1);
  const absl::Status s = ValidateEvalConfig(c, {}, "x.pbtxt");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "x.pbtxt: 2 config errors:\n  knn.k (-1) must be > 0\n  linear.lr (-1) must be > 0");
}

TEST(EvalConfigIoTest, ResultsDirDefaultsToCheckpointFolder) {
  EvalConfig c;
  c.set_checkpoint("runs/quickstart/checkpoint.ckpt");
  EXPECT_EQ(ResultsDir(c), "runs/quickstart");
  c.set_checkpoint("checkpoint.ckpt");
  EXPECT_EQ(ResultsDir(c), ".");
  c.set_results_dir("out");
  EXPECT_EQ(ResultsDir(c), "out");
}

TEST(EvalConfigIoTest, SyntaxErrorsNameFileAndLine) {
  const std::string path = ::testing::TempDir() + "/bad_eval.pbtxt";
  std::ofstream(path) << "checkpoint: \"a\"\nknn { kk: 3 }\n";
  auto c = LoadEvalConfig(path);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find(path + ":2:"), std::string::npos) << c.status();
  EXPECT_EQ(LoadEvalConfig("/nonexistent.pbtxt").status().code(), absl::StatusCode::kNotFound);
}

TEST(EvalConfigIoTest, ExampleConfigsAreValid) {
  EvalValidationOptions o;
  o.check_paths = false;  // the checkpoint exists only after a pretraining run
  const bool bf16_cpu = Bf16CpuProblem(CpuFlags()).empty();
  for (const char* name : {"quickstart.pbtxt", "quickstart_protocol.pbtxt",
                           "moco_v3_quickstart.pbtxt", "quickstart_bf16.pbtxt"}) {
    if (!bf16_cpu && std::string(name) == "quickstart_bf16.pbtxt") continue;  // the CPU refuses
    const std::string path = std::string("eval/configs/") + name;
    auto c = LoadEvalConfig(path);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_TRUE(ValidateEvalConfig(*c, o, path).ok()) << ValidateEvalConfig(*c, o, path);
  }
}

}  // namespace
}  // namespace eval
}  // namespace moco
