// Cross-backend conformance: every backend must compute what the others compute.
//
// Written once with TEST_P and instantiated per backend: each test runs the backend under test
// and a reference backend (the other one) from identical weights, queue and batches, exchanged
// through NamedArrays, and compares the results.
//
// Tolerances are stated per check. Both backends compute in float32; they differ only in
// accumulation order (GEMM blocking, oneDNN vs im2col convolutions, BN statistics accumulated
// in double by eigen and in float by torch). Such differences are ~1e-7 relative per op and
// stay ~1e-6 through a whole forward and backward (measured: forward 1e-7, gradients 2e-6..7e-6
// scale-relative per tensor on resnet18). One effect is not smooth: an activation within
// rounding distance of 0 (ReLU) or a near-tie in a max-pool window can fall on different
// sides in the two backends, and then the gradient of that one element is routed differently.
// That changes a single BN bias gradient by up to a few % and, through SGD, lets the runs drift
// apart by ~1e-4 after such an event (measured: whole-model relative L2 differences jump from
// ~1e-7 to 1e-5..2e-4 at the step where it happens; SGD buffers to ~7e-3). Hence:
//  - the first step is checked per tensor with tight bounds (a wrong formula anywhere shows);
//  - every step of a MoCo run is checked on whole-model relative L2 differences, from identical
//    state (see RunMoco), with bounds >= 10x above what one such event gives (a wrong formula
//    gives 1e-2..1: see PLANTED BUGS below).
#include <algorithm>
#include <iostream>
#include <cmath>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "moco/core/backend.h"
#include "moco/core/backend_registry.h"
#include "moco/core/method_registry.h"
#include "moco/methods/moco_step.h"

namespace moco {
namespace {

struct Pair {
  std::string tested;
  std::string reference;
};

std::string PairName(const ::testing::TestParamInfo<Pair>& info) {
  return info.param.tested + "_vs_" + info.param.reference;
}

std::unique_ptr<Backend> Make(const std::string& name) {
  auto b = CreateBackend(name, BackendOptions{"cpu", 2});
  EXPECT_TRUE(b.ok()) << b.status();
  return b.ok() ? std::move(b).value() : nullptr;
}

HostArray Random(std::vector<int64_t> shape, uint64_t seed) {
  HostArray a(std::move(shape));
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd;
  for (float& v : a.mutable_data()) v = nd(rng);
  return a;
}

NamedArrays State(const Encoder& e) {
  auto s = e.ExportState();
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move(s).value() : NamedArrays();
}

NamedArrays Grads(const Encoder& e) {
  auto g = e.ExportGradients();
  EXPECT_TRUE(g.ok()) << g.status();
  return g.ok() ? std::move(g).value() : NamedArrays();
}

HostArray Host(const Tensor& t) {
  auto h = t.ToHost();
  EXPECT_TRUE(h.ok()) << h.status();
  return h.ok() ? std::move(h).value() : HostArray();
}

// |a - b| <= atol + rtol * max|b| for every element; the message names the worst element.
::testing::AssertionResult Close(const HostArray& a, const HostArray& b, double atol, double rtol) {
  if (a.shape() != b.shape()) return ::testing::AssertionFailure() << "shapes differ";
  double scale = 0, worst = 0;
  size_t at = 0;
  for (float v : b.data()) scale = std::max(scale, static_cast<double>(std::abs(v)));
  for (size_t i = 0; i < a.data().size(); ++i) {
    const double d = std::abs(static_cast<double>(a.data()[i]) - b.data()[i]);
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
  }
  const double bound = atol + rtol * scale;
  if (worst <= bound) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "max |diff| " << worst << " at element " << at << " (" << a.data()[at] << " vs "
         << b.data()[at] << "), bound " << bound << " (scale " << scale << ")";
}

// Every entry of `a` against `b` (same names required).
void ExpectStatesClose(const NamedArrays& a, const NamedArrays& b, double atol, double rtol,
                       const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (const auto& [name, arr] : b) {
    auto it = a.find(name);
    ASSERT_NE(it, a.end()) << what << ": " << name;
    EXPECT_TRUE(Close(it->second, arr, atol, rtol)) << what << ": " << name;
  }
}

// ||a - b|| / ||b|| over all entries of `b` (whose names select what to compare) taken as one
// vector, restricted to names for which `select` is true.
template <typename F>
double GlobalRelative(const NamedArrays& a, const NamedArrays& b, F select) {
  double diff = 0, norm = 0;
  for (const auto& [name, arr] : b) {
    if (!select(name)) continue;
    const HostArray& other = a.at(name);
    for (size_t i = 0; i < arr.data().size(); ++i) {
      const double d = static_cast<double>(other.data()[i]) - arr.data()[i];
      diff += d * d;
      norm += static_cast<double>(arr.data()[i]) * arr.data()[i];
    }
  }
  return norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

bool IsRunningStat(const std::string& n) {
  return n.find("running_") != std::string::npos;
}

ModelConfig Model(const std::string& arch, bool cifar, double width, int in, int dim, bool mlp) {
  ModelConfig m;
  m.set_arch(arch);
  m.set_cifar_stem(cifar);
  m.set_width_multiplier(static_cast<float>(width));
  m.set_in_channels(in);
  m.set_feature_dim(dim);
  m.set_mlp_head(mlp);
  return m;
}

// MoCo v3 heads on the quickstart-like backbone: projector w -> 24 [BN] -> dim [BN, no affine],
// predictor dim -> 12 [BN] -> dim.
ModelConfig V3Model(double width, int dim) {
  ModelConfig m = Model("resnet18", true, width, 1, dim, true);
  m.set_projector_hidden_dim(24);
  m.set_predictor_hidden_dim(12);
  m.set_zero_init_residual(true);
  return m;
}

// vit_micro (D 128, 4 blocks of 4 heads) on 16 px single-channel images in 4 px patches (16
// tokens + cls); with v3 heads as V3Model's unless `v2_head` (Linear, ReLU, Linear).
ModelConfig ViTModel(int dim, bool stop_grad_conv1, bool v2_head = false) {
  ModelConfig m;
  m.set_arch("vit_micro");
  m.set_image_size(16);
  m.set_in_channels(1);
  m.set_feature_dim(dim);
  m.set_stop_grad_conv1(stop_grad_conv1);
  m.set_mlp_head(v2_head);
  if (!v2_head) {
    m.set_projector_hidden_dim(24);
    m.set_predictor_hidden_dim(12);
  }
  return m;
}

class BackendConformanceTest : public ::testing::TestWithParam<Pair> {
 protected:
  void SetUp() override {
    tested_ = Make(GetParam().tested);
    reference_ = Make(GetParam().reference);
    ASSERT_NE(tested_, nullptr);
    ASSERT_NE(reference_, nullptr);
  }
  std::unique_ptr<Backend> tested_, reference_;
};

// Encoder-level: forward (train with split BN, eval, backbone features), running statistics
// and parameter gradients on identical weights, for the ResNet variants the configs use.
TEST_P(BackendConformanceTest, EncoderForwardBackwardMatchReference) {
  // Per-case bounds. resnet18 (measured forward 1e-7, state 1e-7, gradients <= 7e-6 per
  // tensor): tight. The tiny resnet50 (4..32-channel bottlenecks after a 7x7 stem and max pool,
  // BN over 4 images) is ill-conditioned: measured forward 1.2e-4, running stats ~1e-4 and
  // gradient relative L2 3e-3..1.3e-2 (ReLU/max-pool routing flips, see top).
  struct Case {
    ModelConfig model;
    std::vector<int64_t> input;
    int splits;
    double forward_atol, state_rtol, grad_l2;
  };
  const std::vector<Case> cases = {
      // the quickstart net
      {Model("resnet18", true, 0.25, 1, 32, true), {8, 1, 28, 28}, 2, 1e-5, 1e-5, 1e-4},
      // odd sizes, v1 head, 3 splits
      {Model("resnet18", true, 0.125, 3, 16, false), {6, 3, 17, 15}, 3, 1e-5, 1e-5, 1e-4},
      // ImageNet stem, max pool, bottlenecks
      {Model("resnet50", false, 0.125, 3, 16, true), {8, 3, 61, 58}, 2, 1e-3, 1e-3, 5e-2},
      // MoCo v3 heads (bias-free linears, BN1d with and without affine, predictor); BN over
      // the whole batch
      {V3Model(0.25, 16), {8, 1, 28, 28}, 1, 1e-5, 1e-5, 1e-4},
      // the ViT: patch embedding (trained), LayerNorm, attention, GELU, v3 heads. Forward
      // 3e-5: measured up to 1.02e-5 (train mode, BN over 8 samples), varying between runs.
      {ViTModel(16, /*stop_grad_conv1=*/false), {8, 1, 16, 16}, 1, 3e-5, 1e-5, 1e-4},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.model.ShortDebugString());
    auto a = tested_->CreateEncoder(c.model, 11, {c.splits}).value();
    auto b = reference_->CreateEncoder(c.model, 12, {c.splits}).value();
    // The tested encoder's own initialization, imported into the reference: names and shapes
    // agree, and states move across backends.
    ASSERT_TRUE(b->ImportState(State(*a)).ok());
    EXPECT_EQ(a->backbone_dim(), b->backbone_dim());
    const HostArray x = Random(c.input, 1);
    auto xa = tested_->Upload(x).value();
    auto xb = reference_->Upload(x).value();
    HostArray g = Random({c.input[0], c.model.feature_dim()}, 2);
    auto ga = tested_->Upload(g).value();
    auto gb = reference_->Upload(g).value();

    a->ZeroGrad();
    b->ZeroGrad();
    auto za = a->Forward(*xa, true, true).value();
    auto zb = b->Forward(*xb, true, true).value();
    // Unit vectors: 1e-5 absolute is ~100 float ulps (forward is continuous: no flips).
    EXPECT_TRUE(Close(Host(*za), Host(*zb), c.forward_atol, 0)) << "train forward";
    ASSERT_TRUE(a->Backward(*ga).ok());
    ASSERT_TRUE(b->Backward(*gb).ok());
    // Gradients pass back through every BN (each subtracts means, amplifying relative error).
    // Gradients: resnet18 per tensor (measured <= 7e-6 scale-relative). The tiny resnet50
    // (4-32 channel bottlenecks, max pool) has ReLU/max-pool routing flips (see top): measured
    // whole-gradient relative L2 3e-3..1.3e-2, so it gets a whole-model bound only.
    const double grad_l2 = GlobalRelative(Grads(*a), Grads(*b),
                                          [](const std::string&) { return true; });
    std::cout << c.model.arch() << ": gradient relative L2 difference " << grad_l2 << "\n";
    if (c.model.arch() == "resnet18") {
      ExpectStatesClose(Grads(*a), Grads(*b), 1e-6, 1e-4, "gradients");
    } else if (c.model.arch() == "vit_micro") {
      // norm.bias's gradient is 0 in exact arithmetic (the v3 projector's first BatchNorm
      // cancels any constant shift of the features), so both backends give rounding noise of
      // ~1e-6 there: a 1e-5 floor (measured whole-model L2 difference 7.5e-6 / 2.3e-5).
      ExpectStatesClose(Grads(*a), Grads(*b), 1e-5, 1e-4, "gradients");
    }
    EXPECT_LT(grad_l2, c.grad_l2);
    // Running stats after one train forward; weights unchanged (exact).
    ExpectStatesClose(State(*a), State(*b), 1e-6, c.state_rtol, "state");
    EXPECT_TRUE(Close(Host(*a->Forward(*xa, false, false).value()),
                      Host(*b->Forward(*xb, false, false).value()), c.forward_atol, 0))
        << "eval forward";
    EXPECT_TRUE(Close(Host(*a->BackboneFeatures(*xa).value()),
                      Host(*b->BackboneFeatures(*xb).value()), 1e-6, c.state_rtol))
        << "backbone features";
  }
}

// Encoder::activation_capture() (what tests/compare_backends reports): both backends name the
// same layers in the same order, in the caller's sample order (the torch backend reorders rows
// for split BN internally), with values that agree as the outputs do; capturing does not change
// the output.
TEST_P(BackendConformanceTest, CapturedActivationsMatchReference) {
  struct Case {
    ModelConfig model;
    std::vector<int64_t> input;
    std::vector<std::string> first, last;  // expected leading and trailing layer names
    double rtol;                            // scale-relative, per layer (see the test above)
  };
  const std::vector<Case> cases = {
      {Model("resnet18", true, 0.25, 1, 32, true),
       {8, 1, 28, 28},
       {"conv1", "bn1", "layer1.0.conv1", "layer1.0.bn1", "layer1.0.conv2", "layer1.0",
        "layer1.1.conv1"},
       {"layer4.1.conv2", "layer4.1", "avgpool", "fc.1", "fc.2"},
       1e-4},
      {Model("resnet50", false, 0.125, 3, 16, false),
       {8, 3, 45, 41},
       {"conv1", "bn1", "maxpool", "layer1.0.conv1", "layer1.0.bn1", "layer1.0.conv2",
        "layer1.0.bn2", "layer1.0.conv3", "layer1.0.downsample.0", "layer1.0.downsample.1",
        "layer1.0"},
       {"layer4.2", "avgpool", "fc"},
       1e-2},
      {ViTModel(16, /*stop_grad_conv1=*/true, /*v2_head=*/true),
       {8, 1, 16, 16},
       {"patch_embed", "blocks.0.attn", "blocks.0", "blocks.1.attn"},
       {"blocks.3", "norm", "head.1", "head.2"},
       1e-4},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.model.ShortDebugString());
    auto a = tested_->CreateEncoder(c.model, 21, {/*bn_splits=*/4}).value();
    auto b = reference_->CreateEncoder(c.model, 22, {/*bn_splits=*/4}).value();
    ActivationCapture* ca = a->activation_capture();
    ActivationCapture* cb = b->activation_capture();
    ASSERT_NE(ca, nullptr);
    ASSERT_NE(cb, nullptr);
    ASSERT_TRUE(b->ImportState(State(*a)).ok());
    const HostArray x = Random(c.input, 3);
    auto xa = tested_->Upload(x).value();
    auto xb = reference_->Upload(x).value();

    // Off by default; on, it must not change the output (eval mode: no state moves).
    const HostArray plain = Host(*a->Forward(*xa, false, false).value());
    EXPECT_TRUE(ca->Activations().empty());
    ca->Enable(true);
    const HostArray captured = Host(*a->Forward(*xa, false, false).value());
    EXPECT_EQ(plain.data(), captured.data());
    EXPECT_FALSE(ca->Activations().empty());

    // Training mode with split BN (4 groups): the torch backend's interleaved row order must
    // not leak into the captured arrays.
    cb->Enable(true);
    a->Forward(*xa, true, true).value();
    b->Forward(*xb, true, false).value();
    const OrderedArrays& la = ca->Activations();
    const OrderedArrays& lb = cb->Activations();
    ASSERT_EQ(la.size(), lb.size());
    ASSERT_GE(la.size(), c.first.size() + c.last.size());
    for (size_t i = 0; i < c.first.size(); ++i) EXPECT_EQ(la[i].first, c.first[i]);
    for (size_t i = 0; i < c.last.size(); ++i) {
      EXPECT_EQ(la[la.size() - c.last.size() + i].first, c.last[i]);
    }
    for (size_t i = 0; i < la.size(); ++i) {
      ASSERT_EQ(la[i].first, lb[i].first) << "layer " << i;
      EXPECT_EQ(la[i].second.shape()[0], c.input[0]) << la[i].first;
      EXPECT_TRUE(Close(la[i].second, lb[i].second, 1e-6, c.rtol)) << la[i].first;
    }
    ca->Enable(false);
    EXPECT_TRUE(ca->Activations().empty());
  }
}

// Import errors name the first offending entry, on every backend.
TEST_P(BackendConformanceTest, ImportStateNamesTheMismatch) {
  const ModelConfig m = Model("resnet18", true, 0.125, 1, 8, true);
  auto a = tested_->CreateEncoder(m, 1).value();
  NamedArrays s = State(*reference_->CreateEncoder(m, 1).value());
  s.erase("layer4.1.bn2.running_var");
  auto st = a->ImportState(s);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(st.message()).find("layer4.1.bn2.running_var"), std::string::npos) << st;
}

// A MoCo run of 6 steps: identical initial weights (key = query, as MoCo starts), queue and
// batches on both backends; after every step loss, logits, queue (and pointer), both encoders'
// parameters and BN running statistics and the SGD buffers must agree.
//
// The reference backend runs the 6 steps freely. Before each step after the first, the tested
// backend takes the reference's state (both encoders, queue and pointer, SGD buffers) through
// ImportState, so every step is compared from identical inputs and the differences are one
// step's fp32 accumulation order. Without that, the two runs drift apart chaotically: once a
// ReLU input within rounding of 0 falls on different sides in the two backends (an "event",
// see the top of this file), this ill-conditioned setup (BN groups of 4 images, lr 0.05, wd
// 1e-2) amplifies the difference 3-40x per step. Measured in free-running 6-step runs (SGD
// buffers, whole-model relative L2): 6e-4 at the event step, then 2.4e-2, 4.9e-2, 6.4e-2; how
// soon an event happens depends on the compiler's fp op order (opt vs the sanitizer build's
// -O1 dbg), so free-running bounds were either build-specific or too loose to mean anything.
// Each backend carrying its own state from step to step (SGD buffers, queue pointer,
// momentum-updated key encoder) is tested by the backends' unit tests and the resume test.
void RunMoco(Backend& tested, Backend& reference, bool symmetric) {
  const ModelConfig model = Model("resnet18", true, 0.125, 1, 16, true);
  MocoConfig mc;
  mc.set_queue_size(symmetric ? 32 : 24);  // wraps around within the run
  mc.set_momentum(0.9f);                   // small m so the key encoder moves visibly
  mc.set_temperature(0.2f);
  mc.set_symmetric_loss(symmetric);
  mc.set_bn_splits(2);
  OptimizerConfig oc;
  oc.set_lr(0.05f);
  oc.set_momentum(0.9f);
  oc.set_weight_decay(1e-2f);  // large enough that a weight-decay bug shows at step 0
  const int64_t batch = 8;
  const int steps = 6;

  struct Side {
    Backend* backend;
    std::unique_ptr<Encoder> query, key;
    std::unique_ptr<KeyQueue> queue;
    std::unique_ptr<ContrastiveLoss> loss;
    std::unique_ptr<Optimizer> sgd;
    std::unique_ptr<MocoStep> step;
  };
  Side sides[2];
  sides[0].backend = &tested;
  sides[1].backend = &reference;
  NamedArrays init, queue_init;
  for (int s = 0; s < 2; ++s) {
    Side& side = sides[s];
    side.query = side.backend->CreateEncoder(model, 5, {mc.bn_splits()}).value();
    side.key = side.backend->CreateEncoder(model, 6, {mc.bn_splits()}).value();
    side.queue = side.backend->CreateQueue(mc.queue_size(), model.feature_dim(), 7).value();
    if (s == 0) {
      init = State(*side.query);
      queue_init = side.queue->ExportState();
    }
    ASSERT_TRUE(side.query->ImportState(init).ok());
    ASSERT_TRUE(side.key->ImportState(init).ok());
    ASSERT_TRUE(side.queue->ImportState(queue_init).ok());
    side.loss = side.backend->CreateInfoNceLoss().value();
    side.sgd = side.backend->CreateSgd(*side.query, oc).value();
    side.step = std::make_unique<MocoStep>(*side.backend, *side.query, *side.key, *side.queue,
                                           *side.loss, *side.sgd, mc);
  }
  for (int step = 0; step < steps; ++step) {
    SCOPED_TRACE("step " + std::to_string(step) + (symmetric ? " symmetric" : ""));
    if (step > 0) {  // the tested side starts this step from the reference's state
      Side& t = sides[0];
      const Side& ref = sides[1];
      ASSERT_TRUE(t.query->ImportState(State(*ref.query)).ok());
      ASSERT_TRUE(t.key->ImportState(State(*ref.key)).ok());
      ASSERT_TRUE(t.queue->ImportState(ref.queue->ExportState()).ok());
      ASSERT_TRUE(t.sgd->ImportState(ref.sgd->ExportState()).ok());
    }
    const HostArray v1 = Random({batch, 1, 16, 16}, 100 + step);
    const HostArray v2 = Random({batch, 1, 16, 16}, 200 + step);
    MocoStepResult r[2];
    for (int s = 0; s < 2; ++s) {
      auto t1 = sides[s].backend->Upload(v1).value();
      auto t2 = sides[s].backend->Upload(v2).value();
      auto res = sides[s].step->Run(*t1, *t2, oc.lr(), mc.momentum(), 1000 + step);
      ASSERT_TRUE(res.ok()) << res.status();
      r[s] = std::move(res).value();
    }
    // Every step, whole-model relative L2 differences. Measured maxima over the 4 runs, opt
    // and sanitizer builds: ~1e-7 (parameters, running stats), ~1e-6 (queue, logits, SGD
    // buffers) in a step without an event; at an event step, query encoder 6e-5 and SGD
    // buffers 4.7e-3. Bounds: 2e-3 for the encoders, stats, queue and logits, 5e-2 for the
    // SGD buffers. Loss: relative differences <= 1e-6 measured (the forward sees no event's
    // effect: it starts from identical state), bound 1e-5. top1: at most one row may flip.
    auto all = [](const std::string&) { return true; };
    const NamedArrays q0 = State(*sides[0].query), q1 = State(*sides[1].query);
    const NamedArrays k0 = State(*sides[0].key), k1 = State(*sides[1].key);
    const double d_query = GlobalRelative(q0, q1, all);
    const double d_key = GlobalRelative(k0, k1, all);
    const double d_qstats = GlobalRelative(q0, q1, IsRunningStat);
    const double d_kstats = GlobalRelative(k0, k1, IsRunningStat);
    const double d_queue =
        GlobalRelative(sides[0].queue->ExportState(), sides[1].queue->ExportState(), all);
    const double d_logits = GlobalRelative(NamedArrays{{"logits", Host(*r[0].logits)}},
                                           NamedArrays{{"logits", Host(*r[1].logits)}}, all);
    const double d_sgd =
        GlobalRelative(sides[0].sgd->ExportState(), sides[1].sgd->ExportState(), all);
    std::cout << "step " << step << (symmetric ? " (symmetric)" : "") << ": loss " << r[0].loss
              << " vs " << r[1].loss << " (relative "
              << std::abs(r[0].loss - r[1].loss) / std::abs(r[1].loss)
              << "); relative L2 differences: query " << d_query
              << " (running stats " << d_qstats << "), key " << d_key << " (running stats "
              << d_kstats << "), queue " << d_queue << ", logits " << d_logits << ", sgd "
              << d_sgd << "\n";
    EXPECT_NEAR(r[0].loss, r[1].loss, 1e-5 * std::abs(r[1].loss)) << "loss";
    EXPECT_NEAR(r[0].top1, r[1].top1, 1.0 / batch + 1e-6) << "top1";
    EXPECT_LT(d_query, 2e-3);
    EXPECT_LT(d_qstats, 2e-3);
    EXPECT_LT(d_key, 2e-3);
    EXPECT_LT(d_kstats, 2e-3);
    EXPECT_LT(d_queue, 2e-3);
    EXPECT_LT(d_logits, 2e-3);
    EXPECT_LT(d_sgd, 5e-2);
    EXPECT_EQ(sides[0].queue->pointer(), sides[1].queue->pointer());
    if (step == 0) {
      // Per tensor, scale-relative (measured: 9e-6 params and SGD buffers, 1e-6 logits/queue).
      EXPECT_TRUE(Close(Host(*r[0].logits), Host(*r[1].logits), 1e-5, 0)) << "logits";
      ExpectStatesClose(sides[0].queue->ExportState(), sides[1].queue->ExportState(), 1e-5, 0,
                        "queue");
      ExpectStatesClose(q0, q1, 1e-7, 1e-4, "query encoder");
      ExpectStatesClose(k0, k1, 1e-7, 1e-4, "key encoder");
      ExpectStatesClose(sides[0].sgd->ExportState(), sides[1].sgd->ExportState(), 1e-7, 1e-4,
                        "SGD momentum buffers");
    }
  }
}

// The MoCo v3 step (moco/methods/moco_v3_method.h) for 5 steps, teacher-forced as RunMoco: before
// every step the tested method imports the reference's whole state (query with predictor, key,
// optimizer), so each step is compared from identical inputs. Checked per step: the loss
// (2T-scaled, both terms), top-1 and whole-state relative L2 differences of the query and key
// encoders (parameters and running statistics) and the optimizer state.
void RunMocoV3(Backend& tested, Backend& reference, OptimizerConfig::Algorithm algorithm,
               const ModelConfig& model = V3Model(0.125, 16)) {
  ExperimentConfig config;
  *config.mutable_model() = model;
  config.mutable_moco()->set_method("moco_v3");
  config.mutable_moco()->set_momentum(0.9f);  // small m so the key encoder moves visibly
  config.mutable_moco()->set_temperature(0.5f);
  OptimizerConfig& oc = *config.mutable_optimizer();
  oc.set_algorithm(algorithm);
  oc.set_lr(algorithm == OptimizerConfig::SGD ? 0.05f
                                              : (algorithm == OptimizerConfig::ADAMW ? 1e-3f : 0.5f));
  oc.set_momentum(0.9f);
  oc.set_weight_decay(1e-2f);
  config.mutable_run()->set_seed(3);
  const int64_t batch = 8;
  std::unique_ptr<TrainingMethod> methods[2];
  Backend* backends[2] = {&tested, &reference};
  for (int s = 0; s < 2; ++s) {
    auto m = CreateTrainingMethod(config, *backends[s]);
    ASSERT_TRUE(m.ok()) << m.status();
    methods[s] = std::move(m).value();
  }
  auto export_state = [](const TrainingMethod& m) {
    auto s = m.ExportState();
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(s).value() : NamedArrays();
  };
  auto prefix = [](const std::string& p) {
    return [p](const std::string& n) { return n.rfind(p, 0) == 0; };
  };
  for (int step = 0; step < 5; ++step) {
    SCOPED_TRACE("v3 step " + std::to_string(step));
    ASSERT_TRUE(methods[0]->ImportState(export_state(*methods[1])).ok());
    const HostArray v1 = Random({batch, 1, 16, 16}, 300 + step);
    const HostArray v2 = Random({batch, 1, 16, 16}, 400 + step);
    MethodStepResult r[2];
    for (int s = 0; s < 2; ++s) {
      auto t1 = backends[s]->Upload(v1).value();
      auto t2 = backends[s]->Upload(v2).value();
      StepContext context;
      context.lr = oc.lr();
      context.key_momentum = config.moco().momentum();
      context.step_seed = 1000 + step;
      auto res = methods[s]->Step(*t1, *t2, context);
      ASSERT_TRUE(res.ok()) << res.status();
      r[s] = *res;
    }
    const NamedArrays a = export_state(*methods[0]), b = export_state(*methods[1]);
    ASSERT_EQ(a.size(), b.size());
    const double d_query = GlobalRelative(a, b, prefix("query/"));
    const double d_key = GlobalRelative(a, b, prefix("key/"));
    const double d_opt = GlobalRelative(a, b, prefix("optimizer/"));
    // Two ViT tensors have gradients that are 0 in exact arithmetic: norm.bias (the v3
    // projector's first BatchNorm cancels any constant shift of the features) and the key part
    // of attn.qkv.bias (softmax ignores a constant added to a row of logits). AdamW turns either
    // backend's rounding noise there into lr-sized steps of arbitrary sign, so they are bounded
    // apart from the rest (measured on the rest: <= 2.2e-5 at step 0, ~3e-8 after).
    const double d_query_rest = GlobalRelative(a, b, [](const std::string& n) {
      return n.rfind("query/", 0) == 0 && n != "query/norm.bias" &&
             n.find("qkv.bias") == std::string::npos;
    });
    std::cout << "v3 step " << step << ": loss " << r[0].loss << " vs " << r[1].loss
              << "; relative L2 differences: query " << d_query << " (without norm.bias, qkv.bias "
              << d_query_rest << "), key " << d_key << ", optimizer " << d_opt << "\n";
    // Bounds as RunMoco's (one step from identical state; ReLU routing events at most).
    EXPECT_NEAR(r[0].loss, r[1].loss, 1e-5 * std::abs(r[1].loss)) << "loss";
    EXPECT_NEAR(r[0].top1, r[1].top1, 1.0 / batch + 1e-6) << "top1";
    EXPECT_LT(d_query, 2e-3);
    EXPECT_LT(d_query_rest, 1e-4);
    EXPECT_LT(d_key, 2e-3);
    EXPECT_LT(d_opt, 5e-2);
  }
}

TEST_P(BackendConformanceTest, MocoV3RunMatchesReference) {
  RunMocoV3(*tested_, *reference_, OptimizerConfig::SGD);
}

TEST_P(BackendConformanceTest, MocoV3LarsRunMatchesReference) {
  RunMocoV3(*tested_, *reference_, OptimizerConfig::LARS);
}

// moco-v3's ViT recipe: AdamW, the frozen random patch projection.
TEST_P(BackendConformanceTest, MocoV3ViTAdamWRunMatchesReference) {
  RunMocoV3(*tested_, *reference_, OptimizerConfig::ADAMW, ViTModel(16, /*stop_grad_conv1=*/true));
}

TEST_P(BackendConformanceTest, MocoRunMatchesReference) {
  RunMoco(*tested_, *reference_, /*symmetric=*/false);
}

TEST_P(BackendConformanceTest, SymmetricMocoRunMatchesReference) {
  RunMoco(*tested_, *reference_, /*symmetric=*/true);
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendConformanceTest,
                         ::testing::Values(Pair{"eigen", "torch"}, Pair{"torch", "eigen"}),
                         PairName);

// PLANTED BUGS (2026-11-28, each planted alone in backends/eigen, then reverted). Each made
// this suite fail, and the eigen unit tests named in brackets too:
//  - BN running_var updated with the biased batch variance (M instead of M - 1)
//    [batch_norm_test, resnet_test (torchvision golden running stats)];
//  - InfoNCE gradient without the 1/T factor [info_nce_test];
//  - SGD without weight decay [sgd_test, eigen_backend_test];
//  - col2im of a "same" stride-1 conv not zeroing the taps that wrap into the next row
//    [conv2d_test, resnet_test].
// Rechecked on 2026-11-28 15:50 UTC with the step-by-step (teacher-forced) MoCo comparison:
// all four still fail this suite.

}  // namespace
}  // namespace moco
