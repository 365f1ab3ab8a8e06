#include "backends/eigen/vit.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
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

// vit_micro with small v3 heads (projector 128-32-32-8 with BN, predictor 8-16-8).
ModelConfig MicroModel(int64_t image_size, bool stop_grad_conv1) {
  ModelConfig m;
  m.set_arch("vit_micro");
  m.set_image_size(static_cast<int>(image_size));
  m.set_in_channels(1);
  m.set_feature_dim(8);
  m.set_projector_hidden_dim(32);
  m.set_predictor_hidden_dim(16);
  m.set_stop_grad_conv1(stop_grad_conv1);
  return m;
}

EncoderSpec SpecOf(const ModelConfig& m, bool with_predictor = true) {
  absl::StatusOr<EncoderSpec> spec = EncoderSpecForEncoder(m, 1, with_predictor);
  EXPECT_TRUE(spec.ok()) << spec.status();
  return spec.ok() ? *spec : EncoderSpec();
}

// MicroModel's spec with a transformer of another size than the table's (the projector's input
// follows the width).
EncoderSpec ResizedSpec(const ModelConfig& m, int64_t dim, int depth, int heads, int64_t mlp) {
  EncoderSpec spec = SpecOf(m);
  ViTSpec& v = spec.backbone.vit;
  v.embed_dim = dim;
  v.depth = depth;
  v.num_heads = heads;
  v.mlp_hidden = mlp;
  spec.backbone.output_dim = dim;
  spec.projector.widths.front() = dim;
  return spec;
}

// A smaller transformer than any table entry, for finite differences: 8 px, patch 4 (4 tokens
// + cls), D 8, 2 blocks of 2 heads, MLP 16.
EncoderSpec TinySpec(bool stop_grad_conv1) {
  return ResizedSpec(MicroModel(8, stop_grad_conv1), 8, 2, 2, 16);
}

TEST(EigenViTTest, StatesAreTheSpecsLayoutInOrder) {
  for (bool stop_grad : {false, true}) {
    const EncoderSpec spec = SpecOf(MicroModel(28, stop_grad));
    auto net = ViT<float>::Create(spec, 0);
    ASSERT_TRUE(net.ok()) << net.status();
    const std::vector<StateRef<float>> states = (*net)->States();
    const std::vector<StateEntry> layout = EncoderStateLayout(spec);
    ASSERT_EQ(states.size(), layout.size());
    for (size_t i = 0; i < layout.size(); ++i) {
      EXPECT_EQ(states[i].name, layout[i].name) << i;
      EXPECT_EQ(states[i].shape, layout[i].shape) << layout[i].name;
      EXPECT_EQ(states[i].is_parameter(), layout[i].is_parameter) << layout[i].name;
      EXPECT_EQ(states[i].size, Blob<float>::NumElements(layout[i].shape)) << layout[i].name;
    }
  }
}

TEST(EigenViTTest, InitializationFollowsMocoV3) {
  const EncoderSpec spec = SpecOf(MicroModel(28, false));
  auto net = ViT<float>::Create(spec, 3);
  ASSERT_TRUE(net.ok());
  const ViTSpec& v = spec.backbone.vit;
  const std::vector<double> table = SinCosPositionEmbedding(v);
  std::map<std::string, StateRef<float>> by_name;
  for (const StateRef<float>& s : (*net)->States()) by_name[s.name] = s;
  auto max_abs = [](const StateRef<float>& s) {
    float m = 0;
    for (int64_t i = 0; i < s.size; ++i) m = std::max(m, std::abs(s.value[i]));
    return m;
  };
  // Xavier bounds: qkv's fan_out counts one of q, k, v.
  const double d = static_cast<double>(v.embed_dim), h = static_cast<double>(v.mlp_hidden);
  const struct { const char* name; double bound; } xavier[] = {
      {"blocks.0.attn.qkv.weight", std::sqrt(6 / (d + d))},
      {"blocks.1.attn.proj.weight", std::sqrt(6 / (d + d))},
      {"blocks.2.mlp.fc1.weight", std::sqrt(6 / (d + h))},
      {"blocks.3.mlp.fc2.weight", std::sqrt(6 / (h + d))},
      {"patch_embed.proj.weight", std::sqrt(6 / (16 + d))},
  };
  for (const auto& x : xavier) {
    const float m = max_abs(by_name.at(x.name));
    EXPECT_LE(m, x.bound) << x.name;
    EXPECT_GT(m, 0.95 * x.bound) << x.name;
  }
  EXPECT_EQ(max_abs(by_name.at("blocks.0.attn.qkv.bias")), 0.0f);
  EXPECT_EQ(max_abs(by_name.at("patch_embed.proj.bias")), 0.0f);
  EXPECT_GT(max_abs(by_name.at("cls_token")), 0.0f);
  EXPECT_LT(max_abs(by_name.at("cls_token")), 1e-5f);
  EXPECT_EQ(by_name.at("norm.weight").value[5], 1.0f);
  const StateRef<float>& pos = by_name.at("pos_embed");
  ASSERT_EQ(pos.size, static_cast<int64_t>(table.size()));
  for (int64_t i = 0; i < pos.size; ++i) ASSERT_EQ(pos.value[i], static_cast<float>(table[i]));
  // Another seed draws other weights.
  auto other = ViT<float>::Create(spec, 4);
  for (const StateRef<float>& s : (*other)->States()) {
    if (s.name == "patch_embed.proj.weight") EXPECT_NE(s.value[0], by_name.at(s.name).value[0]);
  }
}

// make_vit_golden.py's backbone (16 px, patch 4, 1 channel, D 32, 2 blocks, 4 heads, MLP 128),
// with independent PyTorch's features and the gradients of sum(features^2).
TEST(EigenViTTest, ReproducesTheIndependentPyTorchReference) {
  auto golden = ReadGolden("backends/torch/testdata/forward_vit_micro.bin");
  const EncoderSpec spec = ResizedSpec(MicroModel(16, false), 32, 2, 4, 128);
  auto created = ViT<double>::Create(spec, 0);
  ASSERT_TRUE(created.ok());
  ViT<double>& net = **created;
  int loaded = 0;
  for (const StateRef<double>& s : net.States()) {
    auto it = golden.find("state." + s.name);
    if (it == golden.end()) {
      EXPECT_TRUE(s.name.rfind("head.", 0) == 0 || s.name.rfind("predictor.", 0) == 0) << s.name;
      continue;
    }
    ASSERT_EQ(it->second.shape, s.shape) << s.name;
    if (s.name == "pos_embed") {  // ours (moco/core/vit_spec.cc) against the script's own
      EXPECT_TRUE(AllClose(std::vector<double>(s.value, s.value + s.size), it->second.data, 1e-6, 0));
    }
    std::copy(it->second.data.begin(), it->second.data.end(), s.value);
    ++loaded;
  }
  EXPECT_EQ(loaded, 1 + 1 + 2 + 2 * 12 + 2);

  Blob<double> x(golden.at("input").shape);
  x.data = golden.at("input").data;
  ViTWorkspace<double> ws;
  net.Forward(x, {/*train_bn=*/false}, &ws);
  const Blob<double> features = ws.features;
  // The reference ran in fp32; these are its rounding errors, not ours.
  EXPECT_TRUE(AllClose(features.data, golden.at("features").data, 2e-5, 1e-4));
  Blob<double> grad = features;
  for (double& g : grad.data) g *= 2;
  net.ZeroGrad();
  net.BackwardFromFeatures(grad, &ws);
  int checked = 0;
  for (const StateRef<double>& s : net.Parameters()) {
    auto it = golden.find("grad." + s.name);
    if (it == golden.end()) continue;
    double scale = 0;
    for (double g : it->second.data) scale = std::max(scale, std::abs(g));
    EXPECT_GT(scale, 0) << s.name;
    EXPECT_TRUE(AllClose(std::vector<double>(s.grad, s.grad + s.size), it->second.data,
                         1e-5 + 1e-4 * scale, 0))
        << s.name;
    ++checked;
  }
  EXPECT_EQ(checked, 1 + 2 + 2 * 12 + 2);
}

// The whole encoder (backbone, v3 projector and predictor with train-mode BN, L2 normalization)
// against central differences on sampled entries of every parameter tensor.
TEST(EigenViTTest, BackwardMatchesFiniteDifferences) {
  omp_set_num_threads(1);  // hundreds of tiny forwards
  for (bool stop_grad : {false, true}) {
    SCOPED_TRACE(stop_grad ? "stop_grad_conv1" : "trained patch projection");
    auto created = ViT<double>::Create(TinySpec(stop_grad), 11);
    ASSERT_TRUE(created.ok());
    ViT<double>& net = **created;
    std::mt19937_64 rng(12);
    std::uniform_real_distribution<double> u(-0.5, 0.5);
    // Non-trivial LayerNorm affines, biases and cls token so their gradients are exercised.
    for (StateRef<double>& s : net.Parameters()) {
      const bool norm = s.name.find("norm") != std::string::npos;
      if (norm || s.name.find("bias") != std::string::npos || s.name == "cls_token") {
        for (int64_t i = 0; i < s.size; ++i) s.value[i] = (norm && s.name.find("weight") != std::string::npos ? 1.0 : 0.0) + u(rng);
      }
    }
    Blob<double> x = RandomBlob({4, 1, 8, 8}, 13);
    const ForwardOptions opt{/*train_bn=*/true, 1, /*update_running=*/false};
    ViTWorkspace<double> ws;
    const Blob<double>& z = net.Forward(x, opt, &ws);
    Blob<double> r = RandomBlob(z.shape, 14);
    net.ZeroGrad();
    net.Backward(r, &ws);
    ViTWorkspace<double> probe;
    auto loss = [&] { return Dot(net.Forward(x, opt, &probe).data, r.data); };
    int checked = 0;
    bool saw_patch = false;
    for (StateRef<double>& s : net.Parameters()) {
      saw_patch |= s.name.rfind("patch_embed", 0) == 0;
      std::vector<double> values(s.value, s.value + s.size);
      std::vector<size_t> which;
      for (int k = 0; k < 3; ++k) which.push_back(static_cast<size_t>(rng() % s.size));
      std::vector<double> analytic, numeric;
      for (size_t i : which) {
        const double saved = s.value[i];
        s.value[i] = saved + 1e-6;
        const double up = loss();
        s.value[i] = saved - 1e-6;
        const double down = loss();
        s.value[i] = saved;
        numeric.push_back((up - down) / 2e-6);
        analytic.push_back(s.grad[i]);
      }
      EXPECT_TRUE(AllClose(analytic, numeric, 1e-6, 1e-4)) << s.name;
      ++checked;
    }
    EXPECT_EQ(saw_patch, !stop_grad);
    // cls_token, patch_embed.proj.*, 12 per block, norm.*, the projector's 3 weights and 2 BN
    // affines, the predictor's 2 weights and 1 BN affine.
    EXPECT_EQ(checked, 1 + (stop_grad ? 0 : 2) + 2 * 12 + 2 + (3 + 2 * 2) + (2 + 2));
  }
}

TEST(EigenViTTest, LayerOutputsAreTheTorchCapturesNames) {
  const EncoderSpec spec = SpecOf(MicroModel(28, true));
  auto net = ViT<float>::Create(spec, 0);
  ASSERT_TRUE(net.ok());
  Blob<float> x({2, 1, 28, 28});
  ViTWorkspace<float> ws;
  (*net)->Forward(x, {/*train_bn=*/false}, &ws);
  std::vector<std::string> names;
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& [name, blob] : (*net)->LayerOutputs(ws)) {
    names.push_back(name);
    shapes[name] = blob->shape;
  }
  ASSERT_GE(names.size(), 11u);
  EXPECT_EQ(names[0], "patch_embed");
  EXPECT_EQ(names[1], "blocks.0.attn");
  EXPECT_EQ(names[2], "blocks.0");
  EXPECT_EQ(names[8], "blocks.3");
  EXPECT_EQ(names[9], "norm");
  EXPECT_EQ(names.back(), spec.predictor->OutputName(spec.predictor->num_layers() - 1));
  EXPECT_EQ(shapes["patch_embed"], (std::vector<int64_t>{2, 49, 128}));
  EXPECT_EQ(shapes["blocks.2"], (std::vector<int64_t>{2, 50, 128}));
  EXPECT_EQ(shapes["norm"], (std::vector<int64_t>{2, 128}));
}

}  // namespace
}  // namespace eigen_backend
}  // namespace moco
