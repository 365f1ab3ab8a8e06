#include "backends/torch/resnet.h"
#include "backends/torch/testdata/tensor_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "moco/config/config.pb.h"
#include "moco/core/model_spec.h"

namespace moco::torch_backend {
namespace {

using ::testing::HasSubstr;

std::string ShapeString(const torch::Tensor& t) {
  return absl::StrCat("[", absl::StrJoin(t.sizes(), ","), "]");
}

ModelConfig Options(const std::string& arch, bool cifar_stem, float width, int in_channels,
                    int dim, bool mlp) {
  ModelConfig o;
  o.set_arch(arch);
  o.set_cifar_stem(cifar_stem);
  o.set_width_multiplier(width);
  o.set_in_channels(in_channels);
  o.set_feature_dim(dim);
  o.set_mlp_head(mlp);
  return o;
}

ResNet Make(const ModelConfig& options) {
  absl::StatusOr<EncoderSpec> spec = EncoderSpecFromConfig(options);
  EXPECT_TRUE(spec.ok()) << spec.status();
  absl::StatusOr<ResNet> net = MakeResNet(*spec);
  EXPECT_TRUE(net.ok()) << net.status();
  return *net;
}

// ---- Names and shapes against torchvision (make_param_names.py) ------------------------------

struct NamesCase {
  std::string arch;
  bool mlp;
};

class TorchvisionNamesTest : public ::testing::TestWithParam<NamesCase> {};

TEST_P(TorchvisionNamesTest, ParametersInOrderAndBuffersAsSetMatchGolden) {
  const NamesCase c = GetParam();
  const std::string file =
      TestDataPath(absl::StrCat(c.arch, c.mlp ? "_mlp" : "_linear", "_names.txt"));
  std::ifstream in(file);
  ASSERT_TRUE(in) << "cannot open " << file;
  std::vector<std::string> golden_params;
  std::set<std::string> golden_buffers;
  std::string kind, name, shape;
  while (in >> kind >> name >> shape) {
    const std::string entry = name + " " + shape;
    if (kind == "param") {
      golden_params.push_back(entry);
    } else {
      ASSERT_EQ(kind, "buffer") << file;
      golden_buffers.insert(entry);
    }
  }
  ASSERT_GT(golden_params.size(), 50u);

  ResNet net = Make(Options(c.arch, /*cifar_stem=*/false, 1.0f, 3, 128, c.mlp));
  std::vector<std::string> params;
  for (const auto& p : net->named_parameters()) {
    params.push_back(p.key() + " " + ShapeString(p.value()));
  }
  std::set<std::string> buffers;
  for (const auto& b : net->named_buffers()) {
    buffers.insert(b.key() + " " + ShapeString(b.value()));
  }
  EXPECT_EQ(params, golden_params);
  EXPECT_EQ(buffers, golden_buffers);
}

INSTANTIATE_TEST_SUITE_P(
    Torchvision, TorchvisionNamesTest,
    ::testing::Values(NamesCase{"resnet18", true}, NamesCase{"resnet18", false},
                      NamesCase{"resnet50", true}, NamesCase{"resnet50", false}),
    [](const auto& info) { return info.param.arch + (info.param.mlp ? "_mlp" : "_linear"); });

// ---- Output shapes ---------------------------------------------------------------------------

struct ShapeCase {
  std::string arch;
  bool cifar_stem;
  float width;
  int in_channels;
  int side;
  int64_t feature_width;  // round(512 * width) * expansion
};

class OutputShapeTest : public ::testing::TestWithParam<ShapeCase> {};

TEST_P(OutputShapeTest, ForwardAndFeatures) {
  const ShapeCase c = GetParam();
  ResNet net = Make(Options(c.arch, c.cifar_stem, c.width, c.in_channels, 24, true));
  EXPECT_EQ(net->feature_width(), c.feature_width);
  net->train();
  const torch::Tensor x = torch::randn({2, c.in_channels, c.side, c.side});
  const torch::Tensor out = net->forward(x);
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{2, 24}));
  EXPECT_TRUE(torch::isfinite(out).all().item<bool>());
  net->eval();
  torch::NoGradGuard no_grad;
  EXPECT_EQ(net->features(x).sizes(), (std::vector<int64_t>{2, c.feature_width}));
}

INSTANTIATE_TEST_SUITE_P(Stems, OutputShapeTest,
                         ::testing::Values(ShapeCase{"resnet18", true, 0.25f, 1, 28, 128},
                                           ShapeCase{"resnet18", true, 0.25f, 3, 32, 128},
                                           ShapeCase{"resnet18", true, 1.0f, 1, 32, 512},
                                           ShapeCase{"resnet18", true, 1.0f, 3, 28, 512},
                                           ShapeCase{"resnet18", false, 0.25f, 3, 64, 128},
                                           ShapeCase{"resnet18", false, 1.0f, 3, 64, 512},
                                           ShapeCase{"resnet18", false, 1.0f, 1, 64, 512},
                                           ShapeCase{"resnet34", true, 0.25f, 1, 28, 128},
                                           ShapeCase{"resnet50", true, 0.25f, 1, 28, 512},
                                           ShapeCase{"resnet50", false, 0.25f, 3, 64, 512},
                                           ShapeCase{"resnet50", false, 1.0f, 3, 64, 2048}));

TEST(ResNetTest, StemStructure) {
  ResNet cifar = Make(Options("resnet18", true, 0.5f, 1, 8, false));
  EXPECT_EQ(cifar->conv1->weight.sizes(), (std::vector<int64_t>{32, 1, 3, 3}));
  EXPECT_EQ(cifar->conv1->options.stride()->at(0), 1);
  EXPECT_TRUE(cifar->maxpool.is_empty());
  ResNet imagenet = Make(Options("resnet18", false, 0.5f, 3, 8, false));
  EXPECT_EQ(imagenet->conv1->weight.sizes(), (std::vector<int64_t>{32, 3, 7, 7}));
  EXPECT_EQ(imagenet->conv1->options.stride()->at(0), 2);
  EXPECT_FALSE(imagenet->maxpool.is_empty());
  // 64x64 -> conv1 32 -> maxpool 16 -> layer4 2x2; the CIFAR stem keeps 32 -> layer4 4x4.
  torch::NoGradGuard no_grad;
  imagenet->eval();
  cifar->eval();
  torch::Tensor y =
      imagenet->maxpool->forward(imagenet->conv1->forward(torch::zeros({1, 3, 64, 64})));
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{1, 32, 16, 16}));
  EXPECT_EQ(cifar->conv1->forward(torch::zeros({1, 1, 32, 32})).sizes(),
            (std::vector<int64_t>{1, 32, 32, 32}));
}

// Widths follow the spec's rounding (moco/core/model_spec_test): 0.3 * (64, 512) = 19.2, 153.6.
TEST(ResNetTest, LayerWidthsFollowTheSpecsRounding) {
  ResNet net = Make(Options("resnet18", true, 0.3f, 1, 8, true));
  EXPECT_EQ(net->conv1->weight.size(0), 19);
  EXPECT_EQ(net->feature_width(), 154);
  EXPECT_EQ(net->heads.mlp[0]->as<torch::nn::Linear>()->weight.sizes(),
            (std::vector<int64_t>{154, 154}));
}

// ---- Validation (of configs: moco/core/model_spec_test) ------------------------------------

TEST(ResNetTest, WrongInputThrows) {
  ResNet net = Make(Options("resnet18", true, 0.125f, 1, 8, true));
  EXPECT_THROW(net->forward(torch::zeros({2, 3, 32, 32})), c10::Error);
  net->set_bn_splits(4);
  EXPECT_THROW(net->forward(torch::zeros({6, 1, 32, 32})), c10::Error);  // 6 % 4 != 0
  EXPECT_THROW(net->set_bn_splits(0), c10::Error);
}

// ---- Initialization --------------------------------------------------------------------------

TEST(ResNetTest, InitializationFollowsTorchvision) {
  torch::manual_seed(3);
  ResNet net = Make(Options("resnet18", false, 1.0f, 3, 128, true));
  for (const auto& p : net->named_parameters()) {
    const torch::Tensor& t = p.value();
    if (t.dim() == 4) {  // conv: kaiming normal, fan_out mode, gain sqrt(2)
      const double fan_out = t.size(0) * t.size(2) * t.size(3);
      const double expected = std::sqrt(2.0 / fan_out);
      EXPECT_NEAR(t.std().item<double>(), expected, 0.1 * expected) << p.key();
      EXPECT_NEAR(t.mean().item<double>(), 0.0, 0.1 * expected) << p.key();
    } else if (p.key().rfind("fc.", 0) == 0) {  // Linear default: U(-1/sqrt(fan_in), ...)
      const double bound = 1.0 / std::sqrt(static_cast<double>(net->feature_width()));
      EXPECT_LE(t.abs().max().item<double>(), bound + 1e-7) << p.key();
      EXPECT_GT(t.abs().max().item<double>(), 0.5 * bound) << p.key();
    } else if (p.key().find("weight") != std::string::npos) {  // BN
      EXPECT_TRUE(t.equal(torch::ones_like(t))) << p.key();
    } else {
      EXPECT_TRUE(t.equal(torch::zeros_like(t))) << p.key();
    }
  }
}

// ---- Shuffling BN and cloning ----------------------------------------------------------------

// In training mode with n BN splits, a batch's outputs equal those of running each group of
// consecutive samples through its own copy of the network with plain BN, and the running
// statistics equal the copies' mean: set_bn_splits reaches every BN layer.
TEST(ResNetTest, BnSplitsEqualSeparateGroupsThroughClones) {
  torch::manual_seed(5);
  for (const bool cifar : {true, false}) {
    ResNet net = Make(Options(cifar ? "resnet18" : "resnet50", cifar, 0.125f, 3, 16, true));
    const int side = cifar ? 16 : 64;
    ResNet a(std::dynamic_pointer_cast<ResNetImpl>(net->clone()));
    ResNet b(std::dynamic_pointer_cast<ResNetImpl>(net->clone()));
    net->set_bn_splits(2);
    net->train();
    a->train();
    b->train();
    const torch::Tensor x = torch::randn({6, 3, side, side});
    torch::NoGradGuard no_grad;
    const torch::Tensor out = net->forward(x);
    const torch::Tensor ref =
        torch::cat({a->forward(x.narrow(0, 0, 3)), b->forward(x.narrow(0, 3, 3))}, 0);
    EXPECT_LT((out - ref).abs().max().item<double>(), 1e-4) << (cifar ? "cifar" : "imagenet");
    // Plain BN over the whole batch differs (so the comparison above is meaningful).
    ResNet whole(std::dynamic_pointer_cast<ResNetImpl>(a->clone()));
    EXPECT_GT((whole->forward(x) - out).abs().max().item<double>(), 1e-3);
    const auto bufs = net->named_buffers();
    const auto bufs_a = a->named_buffers();
    const auto bufs_b = b->named_buffers();
    for (const auto& item : bufs) {
      if (item.key().find("running") == std::string::npos) continue;
      const torch::Tensor expected = (bufs_a[item.key()] + bufs_b[item.key()]) / 2;
      EXPECT_LT((item.value() - expected).abs().max().item<double>(), 1e-5) << item.key();
    }
  }
}

TEST(ResNetTest, CloneIsAnIndependentDeepCopy) {
  ResNet query = Make(Options("resnet18", true, 0.125f, 1, 8, true));
  query->set_bn_splits(4);
  ResNet key(std::dynamic_pointer_cast<ResNetImpl>(query->clone()));
  ASSERT_FALSE(key.is_empty());
  const auto qp = query->named_parameters();
  const auto kp = key->named_parameters();
  ASSERT_EQ(qp.size(), kp.size());
  for (const auto& item : qp) {
    EXPECT_TRUE(item.value().equal(kp[item.key()])) << item.key();
    EXPECT_NE(item.value().data_ptr(), kp[item.key()].data_ptr()) << item.key();
  }
  EXPECT_EQ(key->bn_splits(), 4);
  EXPECT_EQ(key->layer3[1]->as<BasicBlock>()->bn2->num_splits(), 4);
  EXPECT_EQ(key->layer3[1]->as<BasicBlock>()->bn2->split_layout(), SplitLayout::kInterleaved);
  EXPECT_TRUE(key->spec().backbone.cifar_stem);
  {
    torch::NoGradGuard no_grad;
    query->conv1->weight.add_(1);
  }
  EXPECT_FALSE(query->conv1->weight.equal(key->conv1->weight));
  // The clone computes the same function as its original.
  ResNet key2(std::dynamic_pointer_cast<ResNetImpl>(query->clone()));
  query->eval();
  key2->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::randn({2, 1, 28, 28});
  EXPECT_TRUE(query->forward(x).equal(key2->forward(x)));
}

// ---- Golden forward against torchvision ------------------------------------------------------

double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

struct GoldenCase {
  std::string file;
  ModelConfig options;
  int64_t output_dim;
};

class TorchvisionForwardTest : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(TorchvisionForwardTest, LoadedWeightsReproduceTorchvisionOutputsAndGradients) {
  const GoldenCase c = GetParam();
  const auto golden = ReadTensorFile(TestDataPath(c.file));
  ASSERT_FALSE(golden.empty());
  ResNet net = Make(c.options);

  // Load every parameter and buffer by name; every "state." entry must be used.
  size_t loaded = 0;
  {
    torch::NoGradGuard no_grad;
    auto load = [&](const std::string& name, torch::Tensor& t) {
      auto it = golden.find("state." + name);
      ASSERT_NE(it, golden.end()) << "golden lacks " << name;
      ASSERT_EQ(it->second.sizes(), t.sizes()) << name;
      t.copy_(it->second);
      ++loaded;
    };
    for (auto& p : net->named_parameters()) load(p.key(), p.value());
    for (auto& b : net->named_buffers()) load(b.key(), b.value());
  }
  size_t golden_state = 0;
  for (const auto& [name, t] : golden) golden_state += name.rfind("state.", 0) == 0;
  EXPECT_EQ(loaded, golden_state);

  const torch::Tensor x = golden.at("input");
  net->eval();
  {
    torch::NoGradGuard no_grad;
    const torch::Tensor out = net->forward(x);
    EXPECT_EQ(out.size(1), c.output_dim);
    EXPECT_LT(MaxAbsDiff(out, golden.at("eval.output")), 1e-4);
    EXPECT_LT(MaxAbsDiff(net->features(x), golden.at("eval.features")), 1e-4);
  }
  net->train();
  const torch::Tensor out = net->forward(x);
  EXPECT_LT(MaxAbsDiff(out, golden.at("train.output")), 1e-4);
  out.pow(2).sum().backward();
  const auto buffers = net->named_buffers();
  const auto params = net->named_parameters();
  int checked = 0;
  for (const auto& [name, expected] : golden) {
    if (name.rfind("train.state.", 0) == 0) {
      const std::string key = name.substr(12);
      ASSERT_NE(buffers.find(key), nullptr) << key;
      EXPECT_LT(MaxAbsDiff(buffers[key], expected), 1e-4) << key;
      ++checked;
    } else if (name.rfind("train.grad.", 0) == 0) {
      const std::string key = name.substr(11);
      ASSERT_NE(params.find(key), nullptr) << key;
      const double scale = expected.abs().max().item<double>();
      EXPECT_GT(scale, 0) << key;
      EXPECT_LT(MaxAbsDiff(params[key].grad(), expected), 1e-4 + 1e-3 * scale) << key;
      ++checked;
    }
  }
  EXPECT_GE(checked, 6);
}

INSTANTIATE_TEST_SUITE_P(
    Torchvision, TorchvisionForwardTest,
    ::testing::Values(
        GoldenCase{"forward_resnet18_cifar_w00625.bin",
                   Options("resnet18", /*cifar_stem=*/true, 0.0625f, 3, 32, /*mlp=*/true), 32},
        GoldenCase{"forward_resnet50_imagenet_w00625.bin",
                   Options("resnet50", /*cifar_stem=*/false, 0.0625f, 1, 16, /*mlp=*/false), 16}));

}  // namespace
}  // namespace moco::torch_backend
