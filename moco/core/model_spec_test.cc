#include "moco/core/model_spec.h"

#include <cmath>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moco {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

ModelConfig Model(const std::string& arch, bool cifar_stem, float width, int in_channels,
                  int feature_dim, bool mlp) {
  ModelConfig m;
  m.set_arch(arch);
  m.set_cifar_stem(cifar_stem);
  m.set_width_multiplier(width);
  m.set_in_channels(in_channels);
  m.set_feature_dim(feature_dim);
  m.set_mlp_head(mlp);
  return m;
}

EncoderSpec Spec(const ModelConfig& m) {
  absl::StatusOr<EncoderSpec> s = EncoderSpecFromConfig(m);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : EncoderSpec();
}

TEST(ModelSpecTest, ArchitectureTableIsTorchvisions) {
  EXPECT_THAT(ResNetArchitectureNames(), ElementsAre("resnet18", "resnet34", "resnet50"));
  const ResNetArchitecture* r34 = FindResNetArchitecture("resnet34");
  ASSERT_NE(r34, nullptr);
  EXPECT_EQ(r34->block, BlockType::kBasic);
  EXPECT_THAT(r34->blocks, ElementsAre(3, 4, 6, 3));
  EXPECT_EQ(FindResNetArchitecture("resnet50")->block, BlockType::kBottleneck);
  EXPECT_EQ(FindResNetArchitecture("resnet19"), nullptr);
  EXPECT_EQ(BlockExpansion(BlockType::kBottleneck), 4);
}

TEST(ModelSpecTest, ScaledWidthRoundsHalfAwayAndIsAtLeastOne) {
  EXPECT_EQ(ScaledWidth(64, 1.0f), 64);
  EXPECT_EQ(ScaledWidth(64, 0.25f), 16);
  EXPECT_EQ(ScaledWidth(128, 0.3f), 38);   // 38.4
  EXPECT_EQ(ScaledWidth(64, 0.3f), 19);    // 19.2
  EXPECT_EQ(ScaledWidth(512, 0.3f), 154);  // 153.6
  EXPECT_EQ(ScaledWidth(64, 0.5 / 64), 1);  // 0.5 rounds away from zero
  EXPECT_EQ(ScaledWidth(64, 0.001f), 1);
  EXPECT_EQ(ScaledWidth(64, 0.0234375), 2);  // 1.5 -> 2
}

TEST(ModelSpecTest, Resnet18CifarQuickstart) {
  const EncoderSpec s = Spec(Model("resnet18", true, 0.25f, 1, 128, true));
  const BackboneSpec& b = s.backbone;
  EXPECT_EQ(b.stem.in_channels, 1);
  EXPECT_EQ(b.stem.out_channels, 16);
  EXPECT_EQ(b.stem.kernel, 3);
  EXPECT_EQ(b.stem.stride, 1);
  EXPECT_FALSE(b.has_max_pool);
  EXPECT_THAT(b.planes, ElementsAre(16, 32, 64, 128));
  ASSERT_EQ(b.blocks.size(), 8u);
  EXPECT_EQ(b.blocks[0].name, "layer1.0");
  EXPECT_FALSE(b.blocks[0].has_downsample);
  EXPECT_EQ(b.blocks[2].name, "layer2.0");
  EXPECT_EQ(b.blocks[2].stride, 2);
  EXPECT_EQ(b.blocks[2].convs[0].stride, 2);
  EXPECT_EQ(b.blocks[2].convs[1].stride, 1);
  EXPECT_TRUE(b.blocks[2].has_downsample);
  EXPECT_EQ(b.blocks[2].downsample.in_channels, 16);
  EXPECT_EQ(b.blocks[2].downsample.out_channels, 32);
  EXPECT_FALSE(b.blocks[3].has_downsample);
  EXPECT_EQ(b.output_dim, 128);
  EXPECT_THAT(s.projector.widths, ElementsAre(128, 128, 128));
  EXPECT_EQ(s.projector.LinearName(0), "fc.0");
  EXPECT_EQ(s.projector.LinearName(1), "fc.2");
  EXPECT_EQ(s.projector.OutputName(0), "fc.1");
  EXPECT_EQ(s.projector.OutputName(1), "fc.2");
  EXPECT_FALSE(s.predictor.has_value());
  EXPECT_EQ(s.feature_dim(), 128);
}

TEST(ModelSpecTest, Resnet50ImagenetBottlenecks) {
  const EncoderSpec s = Spec(Model("resnet50", false, 1.0f, 3, 64, false));
  const BackboneSpec& b = s.backbone;
  EXPECT_EQ(b.stem.kernel, 7);
  EXPECT_EQ(b.stem.stride, 2);
  EXPECT_EQ(b.stem.padding, 3);
  EXPECT_TRUE(b.has_max_pool);
  ASSERT_EQ(b.blocks.size(), 16u);
  const BlockSpec& first = b.blocks[0];
  EXPECT_EQ(first.out_channels, 256);
  ASSERT_EQ(first.convs.size(), 3u);
  EXPECT_EQ(first.convs[0].kernel, 1);
  EXPECT_EQ(first.convs[2].out_channels, 256);
  EXPECT_TRUE(first.has_downsample);  // 64 -> 256 at stride 1
  const BlockSpec& layer3 = b.blocks[7];
  EXPECT_EQ(layer3.name, "layer3.0");
  EXPECT_EQ(layer3.convs[0].stride, 1);  // v1.5: the stride is on the 3x3 conv
  EXPECT_EQ(layer3.convs[1].stride, 2);
  EXPECT_EQ(b.blocks.back().name, "layer4.2");
  EXPECT_EQ(b.output_dim, 2048);
  EXPECT_THAT(s.projector.widths, ElementsAre(2048, 64));
  EXPECT_EQ(s.projector.LinearName(0), "fc");
  EXPECT_EQ(s.projector.OutputName(0), "fc");
}

// Counts and end points of torchvision's state_dict (backends/torch/testdata/*_names.txt; the
// whole lists are compared with every backend in tests/backend_contract_test).
TEST(ModelSpecTest, StateLayoutMatchesTorchvisionCounts) {
  struct Case {
    ModelConfig model;
    size_t params, buffers;
    std::string last_param, last_buffer;
  };
  for (const Case& c : std::vector<Case>{
           {Model("resnet18", false, 1, 3, 128, true), 64, 60, "fc.2.bias",
            "layer4.1.bn2.num_batches_tracked"},
           {Model("resnet18", false, 1, 3, 128, false), 62, 60, "fc.bias",
            "layer4.1.bn2.num_batches_tracked"},
           {Model("resnet50", false, 1, 3, 128, true), 163, 159, "fc.2.bias",
            "layer4.2.bn3.num_batches_tracked"}}) {
    const std::vector<StateEntry> layout = EncoderStateLayout(Spec(c.model));
    size_t params = 0;
    for (const StateEntry& e : layout) params += e.is_parameter;
    EXPECT_EQ(params, c.params) << c.model.ShortDebugString();
    EXPECT_EQ(layout.size() - params, c.buffers);
    EXPECT_EQ(layout[params - 1].name, c.last_param);
    EXPECT_EQ(layout.back().name, c.last_buffer);
    EXPECT_EQ(layout.back().shape, std::vector<int64_t>{});
    EXPECT_EQ(layout[0].name, "conv1.weight");
    EXPECT_EQ(layout[0].shape, (std::vector<int64_t>{64, 3, 7, 7}));
  }
}

TEST(ModelSpecTest, BadConfigNamesTheField) {
  auto bad = EncoderSpecFromConfig(Model("resnet101", false, 1, 3, 128, true));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("model.arch \"resnet101\" is not one of resnet18, resnet34, resnet50"));
  for (float w : {0.0f, -1.0f, NAN, INFINITY}) {
    bad = EncoderSpecFromConfig(Model("resnet18", false, w, 3, 128, true));
    EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << w;
    EXPECT_THAT(std::string(bad.status().message()), HasSubstr("model.width_multiplier")) << w;
  }
  bad = EncoderSpecFromConfig(Model("resnet18", false, 1, 0, 128, true));
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("model.in_channels"));
  bad = EncoderSpecFromConfig(Model("resnet18", false, 1, 3, 0, true));
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("model.feature_dim"));
}

}  // namespace
}  // namespace moco
