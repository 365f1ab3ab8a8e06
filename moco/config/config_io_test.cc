#include "moco/config/config_io.h"

#include <cstdio>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moco {
namespace {

using ::testing::HasSubstr;

std::string WriteTemp(const std::string& name, const std::string& text) {
  const std::string path = std::string(getenv("TEST_TMPDIR")) + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(ConfigIoTest, LoadsValidText) {
  const std::string path =
      WriteTemp("ok.pbtxt", "moco { queue_size: 1024 temperature: 0.07 }\nrun { epochs: 3 }\n");
  absl::StatusOr<ExperimentConfig> config = LoadExperimentConfig(path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->moco().queue_size(), 1024);
  EXPECT_FLOAT_EQ(config->moco().temperature(), 0.07f);
  EXPECT_EQ(config->run().epochs(), 3);
  // Unset fields keep the schema's defaults.
  EXPECT_FLOAT_EQ(config->moco().momentum(), 0.999f);
}

TEST(ConfigIoTest, SyntaxErrorNamesFileLineAndColumn) {
  // Line 3, column 13: the value "abc" is not an integer.
  const std::string path =
      WriteTemp("bad.pbtxt", "run {\n  epochs: 3\n  batch_size: abc\n}\n");
  absl::StatusOr<ExperimentConfig> config = LoadExperimentConfig(path);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr(path + ":3:15:"));
}

TEST(ConfigIoTest, UnknownFieldIsAnErrorWithItsPosition) {
  const std::string path = WriteTemp("unknown.pbtxt", "moco {\n  queue_sise: 5\n}\n");
  absl::StatusOr<ExperimentConfig> config = LoadExperimentConfig(path);
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()), HasSubstr(path + ":2:13:"));  // just past the name
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("queue_sise"));
}

TEST(ConfigIoTest, MissingFileIsNotFoundNamingThePath) {
  absl::StatusOr<ExperimentConfig> config = LoadExperimentConfig("/nonexistent/x.pbtxt");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("/nonexistent/x.pbtxt"));
}

TEST(ConfigIoTest, TextRoundTrip) {
  ExperimentConfig config;
  config.mutable_model()->set_arch("resnet18");
  config.mutable_optimizer()->add_milestones(120);
  ExperimentConfig back;
  ASSERT_TRUE(ParseTextProto(ToTextProto(config), "roundtrip", &back).ok());
  EXPECT_EQ(back.model().arch(), "resnet18");
  EXPECT_EQ(back.optimizer().milestones(0), 120);
}

}  // namespace
}  // namespace moco
