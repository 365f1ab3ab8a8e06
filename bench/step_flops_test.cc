#include "bench/step_flops.h"

#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace moco {
namespace bench {
namespace {

ModelConfig Model(const std::string& arch, bool cifar_stem, float width, int channels,
                  int feature_dim, bool mlp_head) {
  ModelConfig m;
  m.set_arch(arch);
  m.set_cifar_stem(cifar_stem);
  m.set_width_multiplier(width);
  m.set_in_channels(channels);
  m.set_feature_dim(feature_dim);
  m.set_mlp_head(mlp_head);
  return m;
}

// The published figure for torchvision's resnet18 at 224x224 (1000 classes): 1.814 GMACs.
TEST(StepFlopsTest, Resnet18ImageNetMatchesThePublishedCount) {
  auto macs = ForwardMacsPerImage(Model("resnet18", false, 1, 3, 1000, false), 224);
  ASSERT_TRUE(macs.ok()) << macs.status();
  EXPECT_NEAR(static_cast<double>(*macs), 1.814e9, 0.001e9);
}

// Hand count of the CIFAR stem and head: conv1 3x3 1->64 on 32x32 is 64*32*32*9 MACs; the MLP
// head 512*512 + 512*128. Changing only those parts changes the total by exactly that much.
TEST(StepFlopsTest, StemAndHeadDifferencesAreHandCounted) {
  auto one = ForwardMacsPerImage(Model("resnet18", true, 1, 1, 128, true), 32);
  auto three = ForwardMacsPerImage(Model("resnet18", true, 1, 3, 128, true), 32);
  auto linear = ForwardMacsPerImage(Model("resnet18", true, 1, 1, 128, false), 32);
  ASSERT_TRUE(one.ok() && three.ok() && linear.ok());
  EXPECT_EQ(*three - *one, 2 * 64 * 32 * 32 * 9);
  EXPECT_EQ(*one - *linear, 512 * 512);
}

// Every case of testdata/flops_golden.txt, counted by bench/flops_golden.py with forward hooks
// on torchvision's modules (and the PyTorch benchmark's ResNet for widths other than 1).
TEST(StepFlopsTest, MatchesHookCountsOfTorchvisionModules) {
  std::ifstream in("bench/testdata/flops_golden.txt");
  ASSERT_TRUE(in) << "cannot open bench/testdata/flops_golden.txt";
  std::string line;
  int cases = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream row(line);
    std::string arch;
    int cifar, channels, size, dim, mlp;
    float width;
    int64_t expected;
    ASSERT_TRUE(row >> arch >> cifar >> width >> channels >> size >> dim >> mlp >> expected)
        << line;
    auto macs = ForwardMacsPerImage(Model(arch, cifar, width, channels, dim, mlp), size);
    ASSERT_TRUE(macs.ok()) << macs.status();
    EXPECT_EQ(*macs, expected) << line;
    ++cases;
  }
  EXPECT_EQ(cases, 7);
}

TEST(StepFlopsTest, StepIsFourForwardsPlusTheLoss) {
  const ModelConfig model = Model("resnet18", true, 0.25, 1, 128, true);
  auto fwd = ForwardMacsPerImage(model, 28);
  auto f = CountStepFlops(model, 28, 256, 4096);
  ASSERT_TRUE(fwd.ok() && f.ok());
  EXPECT_DOUBLE_EQ(f->forward_flops_per_image, 2.0 * *fwd);
  EXPECT_DOUBLE_EQ(f->loss_flops, 256.0 * 4096 * 128 * 4);
  EXPECT_DOUBLE_EQ(f->step_flops, 4.0 * 256 * 2.0 * *fwd + 256.0 * 4096 * 128 * 4);
  auto sym = CountStepFlops(model, 28, 256, 4096, /*symmetric_loss=*/true);
  ASSERT_TRUE(sym.ok());
  EXPECT_DOUBLE_EQ(sym->step_flops, 2 * f->step_flops);
}

TEST(StepFlopsTest, ViTSmallIsDeiTsCountPlusTheHead) {
  ModelConfig m;
  m.set_arch("vit_small");
  m.set_feature_dim(256);
  m.set_projector_hidden_dim(4096);
  m.set_predictor_hidden_dim(4096);
  auto macs = ForwardMacsPerImage(m, 224);
  ASSERT_TRUE(macs.ok()) << macs.status();
  const int64_t head = 384 * 4096 + 4096 * 4096 + 4096 * 256;  // 3-layer projector
  EXPECT_EQ(*macs - head, 4598498304);                           // DeiT's "4.6 GFLOPs"
  EXPECT_FALSE(ForwardMacsPerImage(m, 32).ok());  // the embedding is built for 224

  auto f = CountMocoV3StepFlops(m, 224, 8);
  ASSERT_TRUE(f.ok()) << f.status();
  const double predictor = 256.0 * 4096 + 4096.0 * 256;
  const double key = 2.0 * *macs, query = key + 2 * predictor;
  EXPECT_DOUBLE_EQ(f->step_flops, 2 * (8 * (3 * query + key) + 4.0 * 8 * 8 * 256));
}

TEST(StepFlopsTest, BadModelsAreErrorsNamingTheField) {
  auto arch = ForwardMacsPerImage(Model("vgg16", true, 1, 3, 128, true), 32);
  ASSERT_FALSE(arch.ok());
  EXPECT_NE(arch.status().message().find("model.arch"), std::string::npos);
  auto width = ForwardMacsPerImage(Model("resnet18", true, 0, 3, 128, true), 32);
  ASSERT_FALSE(width.ok());
  EXPECT_NE(width.status().message().find("model.width_multiplier"), std::string::npos);
  EXPECT_FALSE(ForwardMacsPerImage(Model("resnet18", false, 1, 3, 128, true), 0).ok());
}

}  // namespace
}  // namespace bench
}  // namespace moco
