// The optimizers through the backend contract: for every registered backend, CreateOptimizer
// (moco/core/optimizer_factory.h) binds LARS and AdamW to a real encoder's parameters, one step
// follows the closed forms of moco/core/optimizer.h computed here in double from the encoder's
// exported parameters and gradients (so the right parameters get the right treatment: LARS's
// trust ratio and weight decay on conv and linear weights only), and a run resumed from
// exported encoder and optimizer state continues bitwise. The multi-step numerics against
// PyTorch are the backends' own tests (backends/*/..._optimizers_test); torch vs eigen on the
// same state and gradients is tests/optimizer_conformance_test.
#include <algorithm>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "moco/core/backend.h"
#include "moco/core/backend_registry.h"
#include "moco/core/optimizer_factory.h"

namespace moco {
namespace {

using ::testing::HasSubstr;

// With v3_heads: moco-v3's bias-free projector and predictor with BatchNorm1d (affine and not).
ModelConfig TinyModel(bool v3_heads = false) {
  ModelConfig m;
  m.set_arch("resnet18");
  m.set_cifar_stem(true);
  m.set_width_multiplier(0.0625f);  // 4-8-16-32 channels
  m.set_in_channels(1);
  m.set_feature_dim(8);
  m.set_mlp_head(true);
  if (v3_heads) {
    m.set_projector_hidden_dim(16);
    m.set_predictor_hidden_dim(16);
  }
  return m;
}

HostArray Random(std::vector<int64_t> shape, uint64_t seed) {
  HostArray a(std::move(shape));
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd;
  for (float& v : a.mutable_data()) v = nd(rng);
  return a;
}

double MaxAbs(const HostArray& a) {
  double m = 0;
  for (const float v : a.data()) m = std::max(m, std::abs(double{v}));
  return m;
}

class OptimizerContractTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto b = CreateBackend(GetParam(), BackendOptions{"cpu", 1});
    ASSERT_TRUE(b.ok()) << b.status();
    backend_ = *std::move(b);
  }
  std::unique_ptr<Encoder> NewEncoder(uint64_t seed, bool v3_heads = false) {
    auto e = backend_->CreateEncoder(TinyModel(v3_heads), seed);
    EXPECT_TRUE(e.ok()) << e.status();
    return e.ok() ? *std::move(e) : nullptr;
  }
  // Fresh gradients of sum(output * r) on a fixed batch for step `k`.
  void Gradients(Encoder& enc, int k) {
    enc.ZeroGrad();
    auto x = backend_->Upload(Random({4, 1, 8, 8}, 10 + k));
    ASSERT_TRUE(x.ok());
    auto z = enc.Forward(**x, /*train_bn=*/true, /*record=*/true);
    ASSERT_TRUE(z.ok()) << z.status();
    auto r = backend_->Upload(Random({4, 8}, 20 + k));
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE(enc.Backward(**r).ok());
  }
  NamedArrays Params(const Encoder& enc) {
    NamedArrays state = *enc.ExportState(), grads = *enc.ExportGradients(), out;
    for (const auto& [name, g] : grads) out[name] = state.at(name);
    return out;
  }
  std::unique_ptr<Backend> backend_;
};

TEST_P(OptimizerContractTest, LarsStepFollowsTheRuleOnEveryEncoderParameter) {
  for (const bool v3_heads : {false, true}) {
    SCOPED_TRACE(v3_heads ? "v3 heads" : "v2 head");
    OptimizerConfig oc;
    oc.set_algorithm(OptimizerConfig::LARS);
    oc.set_momentum(0.9f);
    oc.set_weight_decay(0.05f);
    oc.set_lars_trust_coefficient(0.02f);  // large enough that a missing trust ratio shows
    const float lr = 0.5f;
    auto enc = NewEncoder(1, v3_heads);
    auto opt = CreateOptimizer(*backend_, *enc, oc);
    ASSERT_TRUE(opt.ok()) << opt.status();
    Gradients(*enc, 0);
    const NamedArrays p0 = Params(*enc), g = *enc->ExportGradients();
    ASSERT_TRUE((*opt)->Step(lr).ok());
    const NamedArrays p1 = Params(*enc), mu = (*opt)->ExportState();
    ASSERT_EQ(mu.size(), p0.size());
    int matrices = 0, vectors = 0;
    for (const auto& [name, w] : p0) {
      const std::vector<float>& gv = g.at(name).data();
      const std::vector<float>& wv = w.data();
      const bool adapt = w.shape().size() > 1;
      ++(adapt ? matrices : vectors);
      double q = 1, pp = 0, dd = 0;
      std::vector<double> d(wv.size());
      for (size_t i = 0; i < wv.size(); ++i) {
        d[i] = adapt ? gv[i] + double{oc.weight_decay()} * wv[i] : gv[i];
        pp += double{wv[i]} * wv[i];
        dd += d[i] * d[i];
      }
      if (adapt && pp > 0 && dd > 0) q = oc.lars_trust_coefficient() * std::sqrt(pp / dd);
      HostArray expected(w.shape()), expected_mu(w.shape());
      for (size_t i = 0; i < wv.size(); ++i) {
        expected_mu.mutable_data()[i] = static_cast<float>(q * d[i]);
        expected.mutable_data()[i] = static_cast<float>(wv[i] - lr * q * d[i]);
      }
      // Scale-relative bounds: torch's float32 norms (float lane sums) are off by up to ~1e-6
      // relative on these tensors (measured 1.2e-6 in mu); a wrong rule is off by > 1e-3.
      const double tol = 1e-6 * MaxAbs(w) + 1e-5 * MaxAbs(expected_mu) * lr;
      const double tol_mu = 1e-5 * MaxAbs(expected_mu);
      for (size_t i = 0; i < wv.size(); ++i) {
        ASSERT_NEAR(p1.at(name).data()[i], expected.data()[i], tol) << name << "[" << i << "]";
        ASSERT_NEAR(mu.at(name).data()[i], expected_mu.data()[i], tol_mu)
            << name << "[" << i << "]";
      }
    }
    EXPECT_GT(matrices, 10);  // conv and linear weights
    EXPECT_GT(vectors, 10);   // BN weights and biases, linear biases
  }
}

TEST_P(OptimizerContractTest, AdamWFirstStepIsDecayPlusLrTimesGradientOverItsMagnitude) {
  // Step 1: m / (1 - b1) = g and sqrt(v / (1 - b2)) = |g|, so
  // p1 = p0 (1 - lr wd) - lr g / (|g| + eps), on every parameter (BN and biases included).
  OptimizerConfig oc;
  oc.set_algorithm(OptimizerConfig::ADAMW);
  oc.set_weight_decay(0.1f);
  const float lr = 1e-2f;
  auto enc = NewEncoder(2);
  auto opt = CreateOptimizer(*backend_, *enc, oc);
  ASSERT_TRUE(opt.ok()) << opt.status();
  Gradients(*enc, 0);
  const NamedArrays p0 = Params(*enc), g = *enc->ExportGradients();
  ASSERT_TRUE((*opt)->Step(lr).ok());
  const NamedArrays p1 = Params(*enc), state = (*opt)->ExportState();
  ASSERT_EQ(state.size(), 3 * p0.size());
  for (const auto& [name, w] : p0) {
    EXPECT_EQ(state.at(name + ".step"), HostArray({}, {1})) << name;
    const double tol = 1e-6 * (MaxAbs(w) + lr);
    for (size_t i = 0; i < w.data().size(); ++i) {
      const double gi = g.at(name).data()[i];
      const double expected = w.data()[i] * (1 - double{lr} * oc.weight_decay()) -
                              lr * gi / (std::abs(gi) + oc.adam_eps());
      ASSERT_NEAR(p1.at(name).data()[i], expected, tol) << name << "[" << i << "]";
      ASSERT_NEAR(state.at(name + ".exp_avg").data()[i], (1 - double{oc.adam_beta1()}) * gi,
                  1e-6 * std::abs(gi) + 1e-12) << name;
      ASSERT_NEAR(state.at(name + ".exp_avg_sq").data()[i],
                  (1 - double{oc.adam_beta2()}) * gi * gi, 1e-6 * gi * gi + 1e-20) << name;
    }
  }
}

// Four steps uninterrupted vs a new encoder and optimizer importing the exported state after
// step two and taking steps three and four: the same bits.
TEST_P(OptimizerContractTest, ResumedRunIsBitwiseTheUninterruptedOne) {
  for (const auto algorithm : {OptimizerConfig::LARS, OptimizerConfig::ADAMW}) {
    SCOPED_TRACE(OptimizerConfig::Algorithm_Name(algorithm));
    OptimizerConfig oc;
    oc.set_algorithm(algorithm);
    oc.set_weight_decay(0.01f);
    const float lrs[4] = {0.1f, 0.2f, 0.15f, 0.05f};
    auto straight = NewEncoder(3);
    auto opt = *CreateOptimizer(*backend_, *straight, oc);
    for (int k = 0; k < 2; ++k) {
      Gradients(*straight, k);
      ASSERT_TRUE(opt->Step(lrs[k]).ok());
    }
    const NamedArrays encoder_snapshot = *straight->ExportState();
    const NamedArrays optimizer_snapshot = opt->ExportState();
    auto resumed = NewEncoder(4);  // other initial weights: everything must come from the import
    ASSERT_TRUE(resumed->ImportState(encoder_snapshot).ok());
    auto opt_resumed = *CreateOptimizer(*backend_, *resumed, oc);
    ASSERT_TRUE(opt_resumed->ImportState(optimizer_snapshot).ok());
    for (int k = 2; k < 4; ++k) {
      Gradients(*straight, k);
      ASSERT_TRUE(opt->Step(lrs[k]).ok());
      Gradients(*resumed, k);
      ASSERT_TRUE(opt_resumed->Step(lrs[k]).ok());
    }
    EXPECT_NE(*straight->ExportState(), encoder_snapshot);
    EXPECT_EQ(*resumed->ExportState(), *straight->ExportState());
    EXPECT_EQ(opt_resumed->ExportState(), opt->ExportState());
  }
}

TEST_P(OptimizerContractTest, StateFromAnotherAlgorithmIsRefusedByName) {
  auto enc = NewEncoder(5);
  OptimizerConfig lars_config, adamw_config;
  lars_config.set_algorithm(OptimizerConfig::LARS);
  adamw_config.set_algorithm(OptimizerConfig::ADAMW);
  auto lars = *CreateOptimizer(*backend_, *enc, lars_config);
  auto adamw = *CreateOptimizer(*backend_, *enc, adamw_config);
  Gradients(*enc, 0);
  ASSERT_TRUE(lars->Step(0.1f).ok());
  ASSERT_TRUE(adamw->Step(0.1f).ok());
  const absl::Status s = adamw->ImportState(lars->ExportState());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("optimizer state has an entry"));
  EXPECT_EQ(lars->ImportState(adamw->ExportState()).code(), absl::StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(AllBackends, OptimizerContractTest,
                         ::testing::ValuesIn(RegisteredBackendNames()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace moco
