#include "eval/checkpoint_encoder.h"

#include <filesystem>

#include "gtest/gtest.h"
#include "moco/core/backend_registry.h"
#include "moco/config/config_io.h"

namespace moco {
namespace eval {
namespace {

ExperimentConfig TinyConfig(float width) {
  ExperimentConfig c;
  c.mutable_model()->set_arch("resnet18");
  c.mutable_model()->set_cifar_stem(true);
  c.mutable_model()->set_width_multiplier(width);
  c.mutable_model()->set_in_channels(1);
  c.mutable_model()->set_feature_dim(8);
  return c;
}

class CheckpointEncoderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto backend = CreateBackend("torch", BackendOptions{"cpu", 1});
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = std::move(*backend);
    dir_ = ::testing::TempDir() + "/checkpoint_encoder_test";
    std::filesystem::create_directories(dir_);
  }

  // A pretraining-style checkpoint of a (4-channel-wide) resnet18 whose config says `width`.
  std::string WriteCheckpoint(const std::string& name, float config_width, uint64_t seed,
                              NamedArrays* query_state = nullptr) {
    auto encoder = backend_->CreateEncoder(TinyConfig(0.0625f).model(), seed);
    EXPECT_TRUE(encoder.ok()) << encoder.status();
    Checkpoint ckpt;
    ckpt.epoch = 3;
    ckpt.global_step = 42;
    ckpt.config_text = ToTextProto(TinyConfig(config_width));
    ckpt.backend = "torch";
    const NamedArrays state = (*encoder)->ExportState().value();
    for (const auto& [n, a] : state) {
      ckpt.arrays["query/" + n] = a;
      ckpt.arrays["key/" + n] = a;
    }
    ckpt.arrays["queue/queue"] = HostArray({8, 4});
    if (query_state != nullptr) *query_state = state;
    const std::string path = dir_ + "/" + name;
    EXPECT_TRUE(moco::WriteCheckpoint(path, ckpt).ok());
    return path;
  }

  std::unique_ptr<Backend> backend_;
  std::string dir_;
};

TEST_F(CheckpointEncoderTest, LoadsTheQueryEncoderBitwise) {
  NamedArrays written;
  const std::string path = WriteCheckpoint("good.ckpt", 0.0625f, 7, &written);
  auto ckpt = ReadEvalCheckpoint(path);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_EQ(ckpt->epoch, 3);
  EXPECT_EQ(ckpt->global_step, 42);
  EXPECT_EQ(ckpt->config.model().arch(), "resnet18");
  EXPECT_EQ(ckpt->query_state.count("conv1.weight"), 1u);
  auto encoder = CreateLearnedEncoder(*backend_, *ckpt);
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  std::string diff;
  EXPECT_TRUE(BitwiseEqual((*encoder)->ExportState().value(), written, &diff)) << diff;
  // A fresh encoder of another seed differs, so the comparison above is not vacuous.
  auto fresh = backend_->CreateEncoder(ckpt->config.model(), 99);
  EXPECT_FALSE(BitwiseEqual((*fresh)->ExportState().value(), written, &diff));
}

TEST_F(CheckpointEncoderTest, MissingFileNamesIt) {
  auto r = ReadEvalCheckpoint(dir_ + "/nope.ckpt");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find(dir_ + "/nope.ckpt"), std::string::npos) << r.status();
}

TEST_F(CheckpointEncoderTest, TruncatedFileNamesIt) {
  const std::string path = WriteCheckpoint("truncated.ckpt", 0.0625f, 1);
  const auto size = std::filesystem::file_size(path);
  for (uintmax_t keep : {uintmax_t{10}, size / 2, size - 1}) {
    std::filesystem::resize_file(path, keep);
    auto r = ReadEvalCheckpoint(path);
    ASSERT_FALSE(r.ok()) << "kept " << keep;
    EXPECT_NE(r.status().message().find(path), std::string::npos) << r.status();
  }
}

TEST_F(CheckpointEncoderTest, OtherArchitectureNamesFileAndFirstMismatch) {
  // The arrays are a width-0.0625 network (conv1 has 4 output channels); the config says 0.125
  // (8 channels).
  const std::string path = WriteCheckpoint("other_arch.ckpt", 0.125f, 1);
  auto ckpt = ReadEvalCheckpoint(path);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  auto encoder = CreateLearnedEncoder(*backend_, *ckpt);
  ASSERT_FALSE(encoder.ok());
  const std::string message(encoder.status().message());
  EXPECT_EQ(encoder.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("resnet18, width 0.125"), std::string::npos) << message;
  // The first mismatched parameter in name order is a bn1 or conv1 entry, with both shapes.
  EXPECT_NE(message.find("has shape"), std::string::npos) << message;
}

TEST_F(CheckpointEncoderTest, NoQueryArraysIsNotAPretrainingCheckpoint) {
  Checkpoint ckpt;
  ckpt.config_text = ToTextProto(TinyConfig(0.0625f));
  ckpt.arrays["weight"] = HostArray({2});
  const std::string path = dir_ + "/classifier.ckpt";
  ASSERT_TRUE(moco::WriteCheckpoint(path, ckpt).ok());
  auto r = ReadEvalCheckpoint(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(path + " holds no query encoder"), std::string::npos)
      << r.status();
}

TEST_F(CheckpointEncoderTest, UnparsableConfigNamesFile) {
  Checkpoint ckpt;
  ckpt.config_text = "model { arch: ";
  ckpt.arrays["query/conv1.weight"] = HostArray({2});
  const std::string path = dir_ + "/badconfig.ckpt";
  ASSERT_TRUE(moco::WriteCheckpoint(path, ckpt).ok());
  auto r = ReadEvalCheckpoint(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("checkpoint " + path + ": stored experiment config"),
            std::string::npos)
      << r.status();
}

TEST(BitwiseEqualTest, FindsTheFirstDifference) {
  NamedArrays a = {{"a", HostArray({2}, {1, 2})}, {"b", HostArray({1}, {0.0f})}};
  NamedArrays b = a;
  std::string diff;
  EXPECT_TRUE(BitwiseEqual(a, b, &diff));
  b["b"].mutable_data()[0] = -0.0f;  // equal as floats, different bits
  EXPECT_FALSE(BitwiseEqual(a, b, &diff));
  EXPECT_NE(diff.find("'b' element 0"), std::string::npos) << diff;
  b = a;
  b["a"] = HostArray({1, 2}, b["a"].data());
  EXPECT_FALSE(BitwiseEqual(a, b, &diff));
  EXPECT_NE(diff.find("'a' changed shape"), std::string::npos);
  b = a;
  b.erase("b");
  EXPECT_FALSE(BitwiseEqual(a, b, &diff));
}

}  // namespace
}  // namespace eval
}  // namespace moco
