// ViT weights through the layouts: timm state_dicts in and out, moco-v3 checkpoints, the
// architecture inferred back from names and shapes, and the ResNet-only layouts refused.
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "moco/core/model_spec.h"
#include "moco/interop/layouts.h"
#include "moco/interop/weights_file.h"

namespace moco {
namespace interop {
namespace {

using ::testing::HasSubstr;

std::string Tmp(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/" + name;
}

ExperimentConfig MicroViT() {
  ExperimentConfig c;
  ModelConfig& m = *c.mutable_model();
  m.set_arch("vit_micro");
  m.set_image_size(28);
  m.set_in_channels(1);
  m.set_feature_dim(16);
  m.set_projector_hidden_dim(32);
  m.set_predictor_hidden_dim(24);
  c.mutable_moco()->set_method("moco_v3");
  return c;
}

// An encoder state of the spec's names and shapes, random values.
NamedArrays RandomState(const ModelConfig& model, uint64_t seed) {
  absl::StatusOr<EncoderSpec> spec = EncoderSpecFromConfig(model);
  EXPECT_TRUE(spec.ok()) << spec.status();
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  NamedArrays state;
  for (const StateEntry& e : EncoderStateLayout(*spec)) {
    HostArray a(e.shape);
    for (float& v : a.mutable_data()) v = normal(rng);
    state[e.name] = std::move(a);
  }
  return state;
}

TEST(ViTLayoutsTest, TorchvisionOrderIsTimmsStateDictOrder) {
  NamedArrays s = RandomState(MicroViT().model(), 1);
  const std::vector<std::string> order = TorchvisionOrder(s);
  ASSERT_GE(order.size(), 20u);
  EXPECT_EQ(order[0], "cls_token");
  EXPECT_EQ(order[1], "pos_embed");
  EXPECT_EQ(order[2], "patch_embed.proj.weight");
  EXPECT_EQ(order[3], "patch_embed.proj.bias");
  EXPECT_EQ(order[4], "blocks.0.norm1.weight");
  EXPECT_EQ(order[6], "blocks.0.attn.qkv.weight");
  EXPECT_EQ(order[8], "blocks.0.attn.proj.weight");
  EXPECT_EQ(order[10], "blocks.0.norm2.weight");
  EXPECT_EQ(order[12], "blocks.0.mlp.fc1.weight");
  EXPECT_EQ(order[15], "blocks.0.mlp.fc2.bias");
  EXPECT_EQ(order[16], "blocks.1.norm1.weight");
  const size_t norm = 4 + 12 * 4;
  EXPECT_EQ(order[norm], "norm.weight");
  EXPECT_EQ(order[norm + 2], "head.0.weight");
  EXPECT_EQ(order.back().rfind("predictor.", 0), 0u);
}

TEST(ViTLayoutsTest, TimmFileRoundTripsTheBackboneAndInfersTheModel) {
  const ExperimentConfig config = MicroViT();
  MocoWeights w;
  w.query = RandomState(config.model(), 2);
  const std::string path = Tmp("vit_timm.pth");
  ASSERT_TRUE(WriteWeightsFile(path, Format::kTimm, w, config).ok());
  absl::StatusOr<WeightsFile> back = ReadWeightsFile(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->format, Format::kTimm);
  for (const auto& [name, a] : w.query) {
    const bool head = name.rfind("head.", 0) == 0 || name.rfind("predictor.", 0) == 0;
    ASSERT_EQ(back->weights.query.count(name), head ? 0u : 1u) << name;
    if (!head) EXPECT_EQ(back->weights.query.at(name).data(), a.data()) << name;
  }
  absl::StatusOr<ModelConfig> inferred = InferModelConfig(back->weights.query, "");
  ASSERT_TRUE(inferred.ok()) << inferred.status();
  EXPECT_EQ(inferred->arch(), "vit_micro");
  EXPECT_EQ(inferred->in_channels(), 1);
  EXPECT_EQ(inferred->patch_size(), 4);
  EXPECT_EQ(inferred->image_size(), 28);
}

TEST(ViTLayoutsTest, MocoV3CheckpointKeepsHeadsAndPredictor) {
  const ExperimentConfig config = MicroViT();
  MocoWeights w;
  w.query = RandomState(config.model(), 3);
  ModelConfig key_model = config.model();
  key_model.clear_predictor_hidden_dim();
  w.key = RandomState(key_model, 4);
  const std::string path = Tmp("vit_v3.pth");
  ASSERT_TRUE(WriteWeightsFile(path, Format::kMocoV3, w, config).ok());
  absl::StatusOr<WeightsFile> back = ReadWeightsFile(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->format, Format::kMocoV3);
  EXPECT_EQ(back->weights.query.size(), w.query.size());
  EXPECT_EQ(back->weights.key.size(), w.key.size());
  EXPECT_EQ(back->weights.query.at("head.6.weight").data(), w.query.at("head.6.weight").data());
  absl::StatusOr<ModelConfig> inferred = InferModelConfig(back->weights.query, "vit_micro");
  ASSERT_TRUE(inferred.ok()) << inferred.status();
  EXPECT_EQ(inferred->projector_layers(), 3);
  EXPECT_EQ(inferred->projector_hidden_dim(), 32);
  EXPECT_EQ(inferred->feature_dim(), 16);
  EXPECT_EQ(inferred->predictor_hidden_dim(), 24);
  EXPECT_THAT(std::string(InferModelConfig(back->weights.query, "vit_small").status().message()),
              HasSubstr("the file says arch 'vit_small'"));
}

TEST(ViTLayoutsTest, ResNetLayoutsRefuseAViTAndTimmRefusesAResNet) {
  const ExperimentConfig config = MicroViT();
  MocoWeights w;
  w.query = RandomState(config.model(), 5);
  for (Format f : {Format::kTorchvision, Format::kDetectron2}) {
    const std::string path = Tmp(std::string("vit_as_") + FormatName(f));
    absl::Status s = WriteWeightsFile(path, f, w, config);
    EXPECT_THAT(std::string(s.message()), HasSubstr("use timm")) << FormatName(f);
    std::ifstream written(path);
    EXPECT_FALSE(written.good()) << "nothing is written";
  }
  ExperimentConfig resnet;
  resnet.mutable_model()->set_arch("resnet18");
  resnet.mutable_model()->set_cifar_stem(true);
  resnet.mutable_model()->set_width_multiplier(0.125f);
  MocoWeights r;
  r.query = RandomState(resnet.model(), 6);
  EXPECT_THAT(std::string(WriteWeightsFile(Tmp("r.pth"), Format::kTimm, r, resnet).message()),
              HasSubstr("use torchvision"));
}

}  // namespace
}  // namespace interop
}  // namespace moco
