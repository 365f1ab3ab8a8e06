#include "backends/eigen/resnet.h"

#include <omp.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "backends/eigen/golden_file.h"
#include "backends/eigen/grad_check.h"
#include "gtest/gtest.h"
#include "moco/config/config.pb.h"
#include "moco/core/model_spec.h"

namespace moco {
namespace eigen_backend {
namespace {

// A ModelConfig's fields (defaults as ModelConfig's but resnet18), for brace-initialized cases.
struct ModelArgs {
  std::string arch = "resnet18";
  bool cifar_stem = false;
  double width_multiplier = 1.0;
  int64_t in_channels = 3;
  int64_t feature_dim = 128;
  bool mlp_head = true;
};

EncoderSpec Spec(const ModelArgs& a) {
  ModelConfig m;
  m.set_arch(a.arch);
  m.set_cifar_stem(a.cifar_stem);
  m.set_width_multiplier(static_cast<float>(a.width_multiplier));
  m.set_in_channels(static_cast<int>(a.in_channels));
  m.set_feature_dim(static_cast<int>(a.feature_dim));
  m.set_mlp_head(a.mlp_head);
  absl::StatusOr<EncoderSpec> spec = EncoderSpecFromConfig(m);
  EXPECT_TRUE(spec.ok()) << spec.status();
  return spec.ok() ? *spec : EncoderSpec();
}

std::string ShapeString(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}

// ---- Names and shapes against torchvision (golden lists from backends/torch/testdata). ----

struct NamesCase {
  std::string file;
  std::string arch;
  bool mlp;
};

class ResNetNamesTest : public ::testing::TestWithParam<NamesCase> {};

TEST_P(ResNetNamesTest, ParametersInOrderAndBuffersMatchTorchvision) {
  const NamesCase& tc = GetParam();
  std::ifstream in("backends/torch/testdata/" + tc.file);
  ASSERT_TRUE(in.good()) << tc.file;
  std::vector<std::string> golden_params;
  std::set<std::string> golden_buffers;
  std::string kind, name, shape;
  while (in >> kind >> name >> shape) {
    (kind == "param" ? golden_params.push_back(name + " " + shape)
                     : (void)golden_buffers.insert(name + " " + shape));
  }
  auto net = ResNet<float>::Create(Spec({tc.arch, /*cifar_stem=*/false, 1.0, 3, 128, tc.mlp}), 0);
  ASSERT_TRUE(net.ok()) << net.status();
  std::vector<std::string> params;
  std::set<std::string> buffers;
  for (const StateRef<float>& s : (*net)->States()) {
    EXPECT_EQ(s.size, Blob<float>::NumElements(s.shape)) << s.name;
    (s.is_parameter() ? params.push_back(s.name + " " + ShapeString(s.shape))
                      : (void)buffers.insert(s.name + " " + ShapeString(s.shape)));
  }
  EXPECT_EQ(params, golden_params);
  EXPECT_EQ(buffers, golden_buffers);
}

INSTANTIATE_TEST_SUITE_P(Torchvision, ResNetNamesTest,
                         ::testing::Values(NamesCase{"resnet18_mlp_names.txt", "resnet18", true},
                                           NamesCase{"resnet18_linear_names.txt", "resnet18", false},
                                           NamesCase{"resnet50_mlp_names.txt", "resnet50", true},
                                           NamesCase{"resnet50_linear_names.txt", "resnet50",
                                                     false}));

TEST(ResNetTest, OutputShapesAndInitialization) {
  struct Case {
    ModelArgs spec;
    std::vector<int64_t> input;
    int64_t backbone_dim;
  };
  for (const Case& c : std::vector<Case>{
           {{"resnet18", true, 0.25, 1, 128, true}, {2, 1, 28, 28}, 128},
           {{"resnet18", true, 0.25, 3, 64, false}, {2, 3, 32, 32}, 128},
           {{"resnet34", false, 0.125, 3, 16, true}, {2, 3, 64, 64}, 64},
           {{"resnet50", false, 0.0625, 1, 16, true}, {2, 1, 64, 64}, 128}}) {
    auto net = ResNet<float>::Create(Spec(c.spec), 3);
    ASSERT_TRUE(net.ok());
    EXPECT_EQ((*net)->backbone_dim(), c.backbone_dim) << c.spec.arch;
    Blob<float> x(c.input);
    std::mt19937 rng(1);
    std::normal_distribution<float> nd;
    for (float& v : x.data) v = nd(rng);
    ResNetWorkspace<float> ws;
    const Blob<float>& z = (*net)->Forward(x, {true, 2}, &ws);
    EXPECT_EQ(z.shape, (std::vector<int64_t>{2, c.spec.feature_dim}));
    for (int i = 0; i < 2; ++i) {
      double sq = 0;
      for (int64_t j = 0; j < c.spec.feature_dim; ++j) sq += z.data[i * c.spec.feature_dim + j] *
                                                             z.data[i * c.spec.feature_dim + j];
      EXPECT_NEAR(sq, 1.0, 1e-5);
    }
    EXPECT_EQ((*net)->Features(x, {false}, &ws).shape,
              (std::vector<int64_t>{2, c.backbone_dim}));
  }
  // kaiming_normal_(fan_out): conv1 of resnet18 at width 1 has std sqrt(2 / (64 * 49)).
  auto net = ResNet<float>::Create(Spec({"resnet18", false, 1.0, 3, 128, true}), 5);
  ASSERT_TRUE(net.ok());
  for (const StateRef<float>& s : (*net)->States()) {
    if (s.name == "conv1.weight") {
      double sq = 0;
      for (int64_t i = 0; i < s.size; ++i) sq += s.value[i] * s.value[i];
      EXPECT_NEAR(std::sqrt(sq / s.size), std::sqrt(2.0 / (64 * 49)), 0.002);
    }
    if (s.name == "fc.0.weight") {  // U(-1/sqrt(512), 1/sqrt(512))
      float mx = 0;
      for (int64_t i = 0; i < s.size; ++i) mx = std::max(mx, std::abs(s.value[i]));
      EXPECT_LE(mx, 1 / std::sqrt(512.0f));
      EXPECT_GT(mx, 0.95f / std::sqrt(512.0f));
    }
    if (s.name == "bn1.running_var") {
      EXPECT_EQ(s.value[0], 1.0f);
    }
  }
}

// ---- Forward, running stats and gradients against torchvision (golden .bin files). ----

struct GoldenCase {
  std::string file;
  ModelArgs spec;
};

class ResNetGoldenTest : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(ResNetGoldenTest, MatchesTorchvisionForwardRunningStatsAndGradients) {
  const GoldenCase& tc = GetParam();
  auto golden = ReadGolden("backends/torch/testdata/" + tc.file);
  auto created = ResNet<double>::Create(Spec(tc.spec), 0);
  ASSERT_TRUE(created.ok());
  ResNet<double>& net = **created;
  std::map<std::string, StateRef<double>> states;
  for (const StateRef<double>& s : net.States()) {
    auto it = golden.find("state." + s.name);
    ASSERT_NE(it, golden.end()) << s.name;
    ASSERT_EQ(it->second.shape, s.shape) << s.name;
    std::copy(it->second.data.begin(), it->second.data.end(), s.value);
    states[s.name] = s;
  }
  Blob<double> x(golden["input"].shape);
  x.data = golden["input"].data;

  // fp32 reference vs our double: the differences are torch's fp32 rounding, amplified by
  // train-mode BN over few values in these tiny nets (our float build is equally far), so
  // tolerances are relative to each tensor's largest magnitude, as backends/torch's test.
  auto close = [](const std::vector<double>& a, const std::vector<double>& b) {
    double scale = 0;
    for (double v : b) scale = std::max(scale, std::abs(v));
    return AllClose(a, b, 1e-4 + 1e-3 * scale, 0);
  };
  ResNetWorkspace<double> ws;
  net.Forward(x, {/*train_bn=*/false}, &ws);
  EXPECT_TRUE(AllClose((*ws.head_output).data, golden["eval.output"].data, 1e-5, 1e-4));
  EXPECT_TRUE(AllClose(net.Features(x, {false}, &ws).data, golden["eval.features"].data, 1e-5,
                       1e-4));

  net.Forward(x, {/*train_bn=*/true, /*splits=*/1}, &ws);
  const Blob<double>& out = (*ws.head_output);
  EXPECT_TRUE(AllClose(out.data, golden["train.output"].data, 1e-4, 0));
  Blob<double> grad = out;  // d sum(out^2) / d out = 2 out
  for (double& v : grad.data) v *= 2;
  net.ZeroGrad();
  net.BackwardFromHeadOutput(grad, &ws);
  int probes = 0;
  for (const auto& [key, t] : golden) {
    if (key.rfind("train.state.", 0) == 0) {
      const StateRef<double>& s = states.at(key.substr(12));
      EXPECT_TRUE(AllClose(std::vector<double>(s.value, s.value + s.size), t.data, 1e-5, 1e-4))
          << key;
      ++probes;
    } else if (key.rfind("train.grad.", 0) == 0) {
      const StateRef<double>& s = states.at(key.substr(11));
      EXPECT_TRUE(close(std::vector<double>(s.grad, s.grad + s.size), t.data)) << key;
      ++probes;
    }
  }
  EXPECT_GE(probes, 6);
}

INSTANTIATE_TEST_SUITE_P(
    Torchvision, ResNetGoldenTest,
    ::testing::Values(GoldenCase{"forward_resnet18_cifar_w00625.bin",
                                 {"resnet18", true, 0.0625, 3, 32, true}},
                      GoldenCase{"forward_resnet50_imagenet_w00625.bin",
                                 {"resnet50", false, 0.0625, 1, 16, false}}));

// ---- Whole-network backward against finite differences (double). ----

struct GradCase {
  ModelArgs spec;
  std::vector<int64_t> input;
  int splits;
  int samples_per_tensor;
};

class ResNetGradTest : public ::testing::TestWithParam<GradCase> {};

TEST_P(ResNetGradTest, BackwardMatchesFiniteDifferencesOnSampledParameters) {
  const GradCase& tc = GetParam();
  // Hundreds of tiny forwards: OpenMP fork/join would only add overhead (and, on a loaded
  // machine, spinning). The threaded paths are covered by conv2d_test and the conformance suite.
  omp_set_num_threads(1);
  auto created = ResNet<double>::Create(Spec(tc.spec), 7);
  ASSERT_TRUE(created.ok());
  ResNet<double>& net = **created;
  // Non-trivial BN affine parameters so their gradients are exercised.
  std::mt19937_64 rng(8);
  std::uniform_real_distribution<double> u(0.5, 1.5);
  for (StateRef<double>& s : net.Parameters()) {
    if (s.name.find("bn") != std::string::npos || s.name.find("downsample.1") != std::string::npos) {
      for (int64_t i = 0; i < s.size; ++i) s.value[i] = u(rng) - (s.name.find("bias") != std::string::npos ? 1.0 : 0.0);
    }
  }
  Blob<double> x = RandomBlob(tc.input, 9);
  ResNetWorkspace<double> ws;
  const ForwardOptions opt{/*train_bn=*/true, tc.splits, /*update_running=*/false};
  const Blob<double>& z = net.Forward(x, opt, &ws);
  Blob<double> r = RandomBlob(z.shape, 10);
  net.ZeroGrad();
  net.Backward(r, &ws);

  ResNetWorkspace<double> probe_ws;
  auto loss = [&] { return Dot(net.Forward(x, opt, &probe_ws).data, r.data); };
  int checked = 0;
  for (StateRef<double>& s : net.Parameters()) {
    // A few entries of every parameter tensor.
    std::vector<double> values(s.value, s.value + s.size);
    std::vector<size_t> which;
    for (int k = 0; k < tc.samples_per_tensor; ++k) which.push_back(static_cast<size_t>(rng() % s.size));
    for (size_t i : which) {
      // These tiny nets are strongly nonlinear (ReLU kinks, BN over few values): central
      // differences converge only for small steps, so accept agreement at either of two.
      bool agrees = false;
      double numeric = 0;
      for (double eps : {1e-6, 1e-7}) {
        if (agrees) break;
        const double saved = s.value[i];
        s.value[i] = saved + eps;
        const double up = loss();
        s.value[i] = saved - eps;
        const double down = loss();
        s.value[i] = saved;
        numeric = (up - down) / (2 * eps);
        agrees = agrees || std::abs(s.grad[i] - numeric) <= 1e-6 + 1e-5 * std::abs(numeric);
      }
      EXPECT_TRUE(agrees) << s.name << "[" << i << "]: analytic " << s.grad[i] << " numeric "
                          << numeric;
      ++checked;
    }
  }
  EXPECT_GT(checked, 40);  // every parameter tensor is probed
}

INSTANTIATE_TEST_SUITE_P(
    Archs, ResNetGradTest,
    ::testing::Values(
        // v2 head, split BN
        GradCase{{"resnet18", true, 0.0625, 3, 8, true}, {4, 3, 10, 10}, 2, 3},
        // v1 head, odd sizes
        GradCase{{"resnet18", true, 0.0625, 1, 6, false}, {2, 1, 9, 7}, 1, 3},
        // ImageNet stem, max pool, bottlenecks (161 tensors)
        GradCase{{"resnet50", false, 0.0625, 1, 8, true}, {2, 1, 33, 31}, 1, 2}));

}  // namespace
}  // namespace eigen_backend
}  // namespace moco
