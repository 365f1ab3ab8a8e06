// TorchLars and TorchAdamW against the PyTorch goldens (testdata/make_optimizer_goldens.py:
// torch.optim.AdamW and moco-v3's LARS rule), a hand-computed LARS step, and their state.
#include <algorithm>
#include <cmath>
#include <iostream>
#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "backends/torch/optimizer_golden.h"
#include "backends/torch/torch_adamw.h"
#include "backends/torch/torch_lars.h"
#include "backends/torch/torch_tensor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "moco/config/config.pb.h"

namespace moco::torch_backend {
namespace {

using ::testing::HasSubstr;

OptimizerConfig ConfigOf(const OptimizerGolden& g) {
  OptimizerConfig c;
  for (const auto& [field, value] : g.hyper) {
    if (field == "momentum") c.set_momentum(value);
    else if (field == "weight_decay") c.set_weight_decay(value);
    else if (field == "lars_trust_coefficient") c.set_lars_trust_coefficient(value);
    else if (field == "adam_beta1") c.set_adam_beta1(value);
    else if (field == "adam_beta2") c.set_adam_beta2(value);
    else if (field == "adam_eps") c.set_adam_eps(value);
    else ADD_FAILURE() << "unknown hyperparameter " << field;
  }
  return c;
}

// Parameters as an encoder's named_parameters() gives them: leaves requiring gradients.
torch::OrderedDict<std::string, torch::Tensor> ParamsFrom(const NamedArrays& arrays) {
  torch::OrderedDict<std::string, torch::Tensor> params;
  for (const auto& [name, a] : arrays) {
    params.insert(name, FromHostArray(a, torch::kCPU).requires_grad_(true));
  }
  return params;
}

void SetGrads(torch::OrderedDict<std::string, torch::Tensor>& params, const NamedArrays& grads) {
  for (auto& p : params) p.value().mutable_grad() = FromHostArray(grads.at(p.key()), torch::kCPU);
}

NamedArrays Values(const torch::OrderedDict<std::string, torch::Tensor>& params) {
  NamedArrays out;
  for (const auto& p : params) out[p.key()] = ToHostArray(p.value().detach());
  return out;
}

using Factory = std::function<std::unique_ptr<Optimizer>(
    const torch::OrderedDict<std::string, torch::Tensor>&, const OptimizerConfig&)>;

std::unique_ptr<Optimizer> MakeLars(const torch::OrderedDict<std::string, torch::Tensor>& p,
                                    const OptimizerConfig& c) {
  return std::make_unique<TorchLars>(p, c);
}
std::unique_ptr<Optimizer> MakeAdamW(const torch::OrderedDict<std::string, torch::Tensor>& p,
                                     const OptimizerConfig& c) {
  return std::make_unique<TorchAdamW>(p, c);
}

struct Case {
  std::string name;
  Factory make;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class TorchOptimizerGoldenTest : public ::testing::TestWithParam<Case> {};

// Measured: both cases agree with Python's torch to the last bit on this machine (the same
// kernels); the bound is the cross-implementation one, 1e-6 relative.
TEST_P(TorchOptimizerGoldenTest, ReproducesPyTorchStepByStep) {
  absl::StatusOr<OptimizerGolden> g = LoadOptimizerGolden(GetParam().name);
  ASSERT_TRUE(g.ok()) << g.status();
  auto params = ParamsFrom(g->init);
  std::unique_ptr<Optimizer> opt = GetParam().make(params, ConfigOf(*g));
  double worst = 0;
  for (size_t k = 0; k < g->lr.size(); ++k) {
    SCOPED_TRACE("step " + std::to_string(k + 1));
    SetGrads(params, g->grads[k]);
    ASSERT_TRUE(opt->Step(g->lr[k]).ok());
    const NamedArrays values = Values(params), state = opt->ExportState();
    ASSERT_EQ(values.size(), g->params[k].size());
    for (const auto& [name, expected] : g->params[k]) {
      worst = std::max(worst, RelativeDifference(values.at(name), expected));
      EXPECT_LE(RelativeDifference(values.at(name), expected), 1e-6) << name;
    }
    ASSERT_EQ(state.size(), g->states[k].size());
    for (const auto& [name, expected] : g->states[k]) {
      ASSERT_EQ(state.count(name), 1u) << name;
      worst = std::max(worst, RelativeDifference(state.at(name), expected));
      EXPECT_LE(RelativeDifference(state.at(name), expected), 1e-6) << name;
    }
  }
  std::cout << GetParam().name << ": largest relative difference from PyTorch " << worst << "\n";
}

// Export after step 1, import into a fresh optimizer over copies of the parameters, take steps
// 2 and 3 on both: parameters and state are bitwise those of the uninterrupted run.
TEST_P(TorchOptimizerGoldenTest, ImportedStateContinuesBitwise) {
  absl::StatusOr<OptimizerGolden> g = LoadOptimizerGolden(GetParam().name);
  ASSERT_TRUE(g.ok()) << g.status();
  auto params = ParamsFrom(g->init);
  std::unique_ptr<Optimizer> opt = GetParam().make(params, ConfigOf(*g));
  SetGrads(params, g->grads[0]);
  ASSERT_TRUE(opt->Step(g->lr[0]).ok());
  auto resumed_params = ParamsFrom(Values(params));
  std::unique_ptr<Optimizer> resumed = GetParam().make(resumed_params, ConfigOf(*g));
  ASSERT_TRUE(resumed->ImportState(opt->ExportState()).ok());
  EXPECT_EQ(resumed->ExportState(), opt->ExportState());
  for (size_t k = 1; k < g->lr.size(); ++k) {
    SetGrads(params, g->grads[k]);
    SetGrads(resumed_params, g->grads[k]);
    ASSERT_TRUE(opt->Step(g->lr[k]).ok());
    ASSERT_TRUE(resumed->Step(g->lr[k]).ok());
  }
  EXPECT_EQ(Values(resumed_params), Values(params));
  EXPECT_EQ(resumed->ExportState(), opt->ExportState());
}

TEST_P(TorchOptimizerGoldenTest, BadStateIsRefusedAndChangesNothing) {
  absl::StatusOr<OptimizerGolden> g = LoadOptimizerGolden(GetParam().name);
  ASSERT_TRUE(g.ok()) << g.status();
  auto params = ParamsFrom(g->init);
  std::unique_ptr<Optimizer> opt = GetParam().make(params, ConfigOf(*g));
  SetGrads(params, g->grads[0]);
  ASSERT_TRUE(opt->Step(g->lr[0]).ok());
  const NamedArrays good = opt->ExportState();
  NamedArrays bad = good;
  bad["nope.weight"] = HostArray({1});
  absl::Status s = opt->ImportState(bad);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("nope.weight"));
  bad = good;
  const std::string first = bad.begin()->first;
  bad[first] = HostArray({7});
  s = opt->ImportState(bad);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr(first));
  EXPECT_EQ(opt->ExportState(), good);
}

INSTANTIATE_TEST_SUITE_P(Optimizers, TorchOptimizerGoldenTest,
                         ::testing::Values(Case{"lars", MakeLars}, Case{"adamw", MakeAdamW}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.name;
                         });

TEST(TorchLarsTest, OneStepMatchesHandComputation) {
  // lr 2, momentum 0.9, wd 0.1, eta 0.001.
  // "w" [[3, 4]] (2-D), grad [[0.3, 0.4]]: d = grad + 0.1 w = [0.6, 0.8], ||d|| = 1, ||w|| = 5,
  //   q = 0.001 * 5 / 1 = 0.005, mu = q d = [0.003, 0.004], w = w - 2 mu = [2.994, 3.992].
  // "b" [1, -2] (1-D), grad [0.5, 0.25]: no decay, no trust ratio: mu = grad, b = [0, -2.5].
  // "z" [[0, 0]] (2-D, ||z|| = 0), grad [[1, 2]]: q = 1, mu = [1, 2], z = [-2, -4].
  // "s" [[1, -2]], grad [[-0.1, 0.2]] = -0.1 s exactly: d = 0, ||d|| = 0, q = 1 (not inf):
  //   mu = 0, s unchanged.
  NamedArrays init{{"w", HostArray({1, 2}, {3, 4})},
                   {"b", HostArray({2}, {1, -2})},
                   {"z", HostArray({1, 2}, {0, 0})},
                   {"s", HostArray({1, 2}, {1, -2})}};
  NamedArrays grads{{"w", HostArray({1, 2}, {0.3f, 0.4f})},
                    {"b", HostArray({2}, {0.5f, 0.25f})},
                    {"z", HostArray({1, 2}, {1, 2})},
                    {"s", HostArray({1, 2}, {-0.1f, 0.2f})}};
  auto params = ParamsFrom(init);
  OptimizerConfig c;
  c.set_momentum(0.9f);
  c.set_weight_decay(0.1f);
  c.set_lars_trust_coefficient(0.001f);
  TorchLars lars(params, c);
  EXPECT_TRUE(lars.ExportState().empty());
  SetGrads(params, grads);
  ASSERT_TRUE(lars.Step(2.0f).ok());
  const NamedArrays v = Values(params), mu = lars.ExportState();
  EXPECT_NEAR(v.at("w").data()[0], 2.994, 1e-6);
  EXPECT_NEAR(v.at("w").data()[1], 3.992, 1e-6);
  EXPECT_NEAR(mu.at("w").data()[0], 0.003, 1e-9);
  EXPECT_NEAR(mu.at("w").data()[1], 0.004, 1e-9);
  EXPECT_EQ(v.at("b"), HostArray({2}, {0, -2.5f}));
  EXPECT_EQ(v.at("z"), HostArray({1, 2}, {-2, -4}));
  EXPECT_EQ(mu.at("s"), HostArray({1, 2}, {0, 0}));
  EXPECT_EQ(v.at("s"), init.at("s"));
}

TEST(TorchAdamWTest, ParameterWithoutGradientIsSkippedAndKeepsItsStepCount) {
  NamedArrays init{{"a", HostArray({2}, {1, 2})}, {"b", HostArray({2}, {3, 4})}};
  auto params = ParamsFrom(init);
  TorchAdamW adamw(params, OptimizerConfig());
  params["a"].mutable_grad() = torch::ones({2});
  ASSERT_TRUE(adamw.Step(0.1f).ok());
  ASSERT_TRUE(adamw.Step(0.1f).ok());
  const NamedArrays s = adamw.ExportState();
  EXPECT_EQ(s.at("a.step"), HostArray({}, {2}));
  EXPECT_EQ(s.count("b.step"), 0u);
  EXPECT_EQ(Values(params).at("b"), init.at("b"));
  NamedArrays bad = s;
  bad["a.step"] = HostArray({}, {0.5f});
  EXPECT_THAT(std::string(adamw.ImportState(bad).message()), HasSubstr("a.step"));
  bad = s;
  bad.erase("a.exp_avg_sq");
  EXPECT_THAT(std::string(adamw.ImportState(bad).message()), HasSubstr("a.exp_avg_sq"));
}

}  // namespace
}  // namespace moco::torch_backend
