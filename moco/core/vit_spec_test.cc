#include "moco/core/vit_spec.h"

#include <cmath>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "moco/core/model_spec.h"

namespace moco {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

ModelConfig ViTModel(const std::string& arch) {
  ModelConfig m;
  m.set_arch(arch);
  m.set_in_channels(3);
  m.set_feature_dim(256);
  m.set_projector_hidden_dim(4096);
  m.set_predictor_hidden_dim(4096);
  return m;
}

int64_t ParameterCount(const EncoderSpec& spec, bool backbone_only) {
  int64_t n = 0;
  for (const StateEntry& e : EncoderStateLayout(spec)) {
    if (backbone_only && (e.name.rfind("head.", 0) == 0 || e.name.rfind("predictor.", 0) == 0)) {
      continue;
    }
    if (!e.is_parameter && e.name != "pos_embed") continue;  // BN buffers
    int64_t size = 1;
    for (int64_t d : e.shape) size *= d;
    n += size;
  }
  return n;
}

TEST(ViTSpecTest, TableIsMocoV3s) {
  EXPECT_THAT(ViTArchitectureNames(), ElementsAre("vit_micro", "vit_tiny", "vit_small", "vit_base"));
  const ViTArchitecture* s = FindViTArchitecture("vit_small");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->embed_dim, 384);
  EXPECT_EQ(s->depth, 12);
  EXPECT_EQ(s->num_heads, 12);  // moco-v3's ViT-S, not DeiT's 6
  EXPECT_EQ(FindViTArchitecture("vit_base")->embed_dim, 768);
  EXPECT_EQ(FindViTArchitecture("vit_tiny")->num_heads, 3);
  EXPECT_EQ(FindViTArchitecture("resnet50"), nullptr);
}

// The published sizes: timm's vit_small_patch16_224 has 22,050,664 parameters with its 1000-way
// classifier (384 * 1000 + 1000 of them) and DeiT reports 4.6 G "FLOPs" (multiply-adds) at 224.
TEST(ViTSpecTest, ViTSmallParametersAndMacsArePublishedOnes) {
  absl::StatusOr<EncoderSpec> spec = EncoderSpecFromConfig(ViTModel("vit_small"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  const ViTSpec& v = spec->backbone.vit;
  EXPECT_TRUE(spec->backbone.is_vit());
  EXPECT_EQ(v.patch_size, 16);
  EXPECT_EQ(v.num_tokens(), 197);
  EXPECT_EQ(spec->backbone.output_dim, 384);
  EXPECT_EQ(ParameterCount(*spec, /*backbone_only=*/true) + 384 * 1000 + 1000, 22050664);
  EXPECT_NEAR(static_cast<double>(ViTBackboneMacs(v)) / 1e9, 4.6, 0.05);
  // ViT-B/16: 86.6 M parameters with the classifier (DeiT-B: 86 M, 17.6 G).
  absl::StatusOr<EncoderSpec> base = EncoderSpecFromConfig(ViTModel("vit_base"));
  ASSERT_TRUE(base.ok());
  EXPECT_EQ(ParameterCount(*base, true) + 768 * 1000 + 1000, 86567656);
  EXPECT_NEAR(static_cast<double>(ViTBackboneMacs(base->backbone.vit)) / 1e9, 17.6, 0.1);
}

TEST(ViTSpecTest, NamesAreTimmsAndHeadsAreMocoV3s) {
  ModelConfig m = ViTModel("vit_micro");
  m.set_image_size(28);
  m.set_in_channels(1);
  m.set_projector_hidden_dim(64);
  m.set_predictor_hidden_dim(32);
  m.set_feature_dim(16);
  absl::StatusOr<EncoderSpec> spec = EncoderSpecFromConfig(m);
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->backbone.vit.grid(), 7);
  EXPECT_EQ(spec->projector.name, "head");
  EXPECT_THAT(spec->projector.widths, ElementsAre(128, 64, 64, 16));  // 3 layers for ViT
  EXPECT_THAT(spec->predictor->widths, ElementsAre(16, 32, 16));
  std::vector<std::string> names;
  for (const StateEntry& e : EncoderStateLayout(*spec)) names.push_back(e.name);
  EXPECT_EQ(names[0], "cls_token");
  EXPECT_EQ(names[1], "patch_embed.proj.weight");
  EXPECT_EQ(names[3], "blocks.0.norm1.weight");
  EXPECT_EQ(names[5], "blocks.0.attn.qkv.weight");
  EXPECT_EQ(names[13], "blocks.0.mlp.fc2.weight");
  EXPECT_THAT(names, ::testing::Contains("norm.bias"));
  EXPECT_THAT(names, ::testing::Contains("head.6.weight"));
  EXPECT_THAT(names, ::testing::Contains("head.7.running_var"));
  EXPECT_THAT(names, ::testing::Contains("predictor.3.weight"));
  const std::vector<StateEntry> layout = EncoderStateLayout(*spec);
  auto find = [&](const std::string& name) {
    for (const StateEntry& e : layout) {
      if (e.name == name) return e;
    }
    return StateEntry{};
  };
  EXPECT_FALSE(find("pos_embed").is_parameter);
  EXPECT_THAT(find("pos_embed").shape, ElementsAre(1, 50, 128));
  EXPECT_TRUE(find("patch_embed.proj.weight").is_parameter);
  EXPECT_THAT(find("patch_embed.proj.weight").shape, ElementsAre(128, 1, 4, 4));

  m.set_stop_grad_conv1(true);
  spec = EncoderSpecFromConfig(m);
  ASSERT_TRUE(spec.ok());
  for (const StateEntry& e : EncoderStateLayout(*spec)) {
    if (e.name.rfind("patch_embed.", 0) == 0) {
      EXPECT_FALSE(e.is_parameter) << e.name;
    }
  }
}

TEST(ViTSpecTest, SinCosEmbeddingFollowsMocoV3) {
  ViTSpec v;
  v.image_size = 12;
  v.patch_size = 4;
  v.embed_dim = 8;
  const std::vector<double> pe = SinCosPositionEmbedding(v);
  ASSERT_EQ(pe.size(), 10u * 8u);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(pe[i], 0.0);  // cls token
  // Token 1 + r * 3 + c with r = 2, c = 1; omega = [1, 1/100].
  const double* row = &pe[(1 + 2 * 3 + 1) * 8];
  EXPECT_DOUBLE_EQ(row[0], std::sin(2.0));
  EXPECT_DOUBLE_EQ(row[1], std::sin(2.0 / 100));
  EXPECT_DOUBLE_EQ(row[2], std::cos(2.0));
  EXPECT_DOUBLE_EQ(row[3], std::cos(2.0 / 100));
  EXPECT_DOUBLE_EQ(row[4], std::sin(1.0));
  EXPECT_DOUBLE_EQ(row[6], std::cos(1.0));
  EXPECT_DOUBLE_EQ(row[7], std::cos(1.0 / 100));
}

TEST(ViTSpecTest, ConfigErrorsNameTheField) {
  ModelConfig m = ViTModel("vit_small");
  m.set_patch_size(15);
  EXPECT_THAT(std::string(EncoderSpecFromConfig(m).status().message()),
              HasSubstr("model.patch_size (15)"));
  m = ViTModel("vit_small");
  m.set_cifar_stem(true);
  EXPECT_THAT(std::string(EncoderSpecFromConfig(m).status().message()),
              HasSubstr("model.cifar_stem is a ResNet option"));
  m = ViTModel("vit_small");
  m.set_arch("resnet18");
  m.set_stop_grad_conv1(true);
  EXPECT_THAT(std::string(EncoderSpecFromConfig(m).status().message()),
              HasSubstr("model.stop_grad_conv1 is a ViT option"));
  m = ViTModel("vit_small");
  m.set_arch("vit_huge");
  EXPECT_THAT(std::string(EncoderSpecFromConfig(m).status().message()), HasSubstr("vit_micro"));
  m = ViTModel("vit_small");
  m.set_projector_layers(1);
  EXPECT_THAT(std::string(EncoderSpecFromConfig(m).status().message()),
              HasSubstr("model.projector_layers (1)"));
}

}  // namespace
}  // namespace moco
