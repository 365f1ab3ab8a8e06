#include "backends/torch/vit.h"

#include <cmath>
#include <map>
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "backends/torch/testdata/tensor_file.h"
#include "moco/core/vit_spec.h"

namespace moco::torch_backend {
namespace {

// make_vit_golden.py's model: 16 px, patch 4, 1 channel, D 32, 2 blocks, 4 heads, mlp 128.
ViTSpec GoldenSpec() {
  ViTSpec s;
  s.image_size = 16;
  s.patch_size = 4;
  s.in_channels = 1;
  s.embed_dim = 32;
  s.depth = 2;
  s.num_heads = 4;
  s.mlp_hidden = 128;
  return s;
}

double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

TEST(ViTTest, ReproducesTheIndependentPyTorchReferenceForwardAndGradients) {
  const auto golden = ReadTensorFile(TestDataPath("forward_vit_micro.bin"));
  ViTBackbone net(GoldenSpec());

  // timm's names: every parameter and buffer is in the golden state and nothing else is.
  std::set<std::string> ours, theirs;
  for (const auto& p : net->named_parameters()) ours.insert(p.key());
  for (const auto& b : net->named_buffers()) ours.insert(b.key());
  for (const auto& [name, t] : golden) {
    if (name.rfind("state.", 0) == 0) theirs.insert(name.substr(6));
  }
  EXPECT_EQ(ours, theirs);
  // Our sin-cos table (moco/core/vit_spec.cc) against the script's own.
  EXPECT_LT(MaxAbsDiff(net->pos_embed, golden.at("state.pos_embed")), 1e-6);
  EXPECT_EQ(net->named_parameters().find("pos_embed"), nullptr) << "pos_embed must be a buffer";

  {
    torch::NoGradGuard no_grad;
    for (auto& p : net->named_parameters()) p.value().copy_(golden.at("state." + p.key()));
  }
  const torch::Tensor x = golden.at("input");
  const torch::Tensor f = net->forward(x);
  EXPECT_LT(MaxAbsDiff(f, golden.at("features")), 1e-4);
  f.pow(2).sum().backward();
  int checked = 0;
  for (const auto& p : net->named_parameters()) {
    const torch::Tensor& expected = golden.at("grad." + p.key());
    const double scale = expected.abs().max().item<double>();
    EXPECT_GT(scale, 0) << p.key();
    EXPECT_LT(MaxAbsDiff(p.value().grad(), expected), 1e-4 + 1e-3 * scale) << p.key();
    ++checked;
  }
  EXPECT_EQ(checked, 1 + 2 + 2 * 12 + 2);  // cls_token, patch_embed.proj.*, 12 per block, norm.*
}

TEST(ViTTest, StopGradConv1MakesThePatchProjectionBuffers) {
  ViTSpec spec = GoldenSpec();
  ViTBackbone trained(spec);
  spec.stop_grad_conv1 = true;
  ViTBackbone frozen(spec);
  EXPECT_NE(trained->named_parameters().find("patch_embed.proj.weight"), nullptr);
  EXPECT_EQ(frozen->named_parameters().find("patch_embed.proj.weight"), nullptr);
  EXPECT_EQ(frozen->named_parameters().find("patch_embed.proj.bias"), nullptr);
  EXPECT_NE(frozen->named_buffers().find("patch_embed.proj.weight"), nullptr);
  EXPECT_EQ(trained->parameters().size(), frozen->parameters().size() + 2);
  // Gradients still flow through the frozen projection to nothing trainable below it, and
  // the rest of the network trains.
  frozen->forward(torch::randn({2, 1, 16, 16})).sum().backward();
  EXPECT_TRUE(frozen->cls_token.grad().defined());
}

TEST(ViTTest, InitializationFollowsMocoV3) {
  torch::manual_seed(7);
  const ViTSpec spec = GoldenSpec();
  ViTBackbone net(spec);
  const int64_t d = spec.embed_dim;
  auto bound = [](int64_t fan_in, int64_t fan_out) { return std::sqrt(6.0 / (fan_in + fan_out)); };
  auto* block = net->blocks[0]->as<ViTBlockImpl>();
  const struct { const torch::Tensor* w; double a; const char* name; } cases[] = {
      {&block->attn->qkv->weight, bound(d, d), "qkv (q, k, v counted apart)"},
      {&block->attn->proj->weight, bound(d, d), "proj"},
      {&block->mlp->fc1->weight, bound(d, spec.mlp_hidden), "fc1"},
      {&net->patch_embed->weight(), bound(spec.patch_size * spec.patch_size, d), "patch"},
  };
  for (const auto& c : cases) {
    const double max = c.w->abs().max().item<double>();
    EXPECT_LE(max, c.a) << c.name;
    EXPECT_GT(max, 0.9 * c.a) << c.name;  // uniform over the whole range, not a narrower one
  }
  EXPECT_EQ(block->attn->qkv->bias.abs().max().item<double>(), 0);
  EXPECT_EQ(block->mlp->fc2->bias.abs().max().item<double>(), 0);
  const double cls = net->cls_token.abs().max().item<double>();
  EXPECT_GT(cls, 0);
  EXPECT_LT(cls, 1e-5);
  EXPECT_EQ(block->norm1->weight.min().item<double>(), 1);
}

TEST(ViTTest, WrongImageSizeNamesTheConfigField) {
  ViTBackbone net(GoldenSpec());
  try {
    net->forward(torch::randn({2, 1, 20, 20}));
    FAIL() << "expected an error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.image_size"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace moco::torch_backend
