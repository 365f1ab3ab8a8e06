// EigenLars and EigenAdamW against the PyTorch goldens (backends/torch/testdata/
// make_optimizer_goldens.py: torch.optim.AdamW and moco-v3's LARS rule), and their state. The
// update math itself is checked by hand in lars_test.cc and adamw_test.cc.
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "backends/eigen/array_parameters.h"
#include "backends/eigen/eigen_adamw.h"
#include "backends/eigen/eigen_lars.h"
#include "backends/torch/optimizer_golden.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "moco/config/config.pb.h"

namespace moco {
namespace eigen_backend {
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

using Factory =
    std::function<std::unique_ptr<Optimizer>(ParameterSource, const OptimizerConfig&)>;

struct Case {
  std::string name;
  Factory make;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class EigenOptimizerGoldenTest : public ::testing::TestWithParam<Case> {};

// Element-relative differences (RelativeDifference) from float32 rounding only: torch sums its
// norms in float vector lanes where lars.h sums in double, and fuses some multiply-adds.
// Measured (printed): LARS 6.0e-7, AdamW 4.8e-7, both in momentum-like state where the update
// cancels part of the old value; bound 2e-6. A wrong rule is off by > 1e-3.
TEST_P(EigenOptimizerGoldenTest, ReproducesPyTorchStepByStep) {
  absl::StatusOr<OptimizerGolden> g = LoadOptimizerGolden(GetParam().name);
  ASSERT_TRUE(g.ok()) << g.status();
  ArrayParameters params(g->init);
  std::unique_ptr<Optimizer> opt = GetParam().make(params.Source(), ConfigOf(*g));
  double worst = 0;
  std::string worst_name;
  for (size_t k = 0; k < g->lr.size(); ++k) {
    SCOPED_TRACE("step " + std::to_string(k + 1));
    params.SetGrads(g->grads[k]);
    ASSERT_TRUE(opt->Step(g->lr[k]).ok());
    const NamedArrays values = params.Values(), state = opt->ExportState();
    ASSERT_EQ(values.size(), g->params[k].size());
    for (const auto& [name, expected] : g->params[k]) {
      const double d = RelativeDifference(values.at(name), expected);
      if (d > worst) worst = d, worst_name = "step " + std::to_string(k + 1) + " " + name;
      EXPECT_LE(d, 2e-6) << name;
    }
    ASSERT_EQ(state.size(), g->states[k].size());
    for (const auto& [name, expected] : g->states[k]) {
      ASSERT_EQ(state.count(name), 1u) << name;
      const double d = RelativeDifference(state.at(name), expected);
      if (d > worst) worst = d, worst_name = "step " + std::to_string(k + 1) + " state " + name;
      EXPECT_LE(d, 2e-6) << name;
    }
  }
  std::cout << GetParam().name << ": largest relative difference from PyTorch " << worst << " ("
            << worst_name << ")\n";
}

TEST_P(EigenOptimizerGoldenTest, ImportedStateContinuesBitwise) {
  absl::StatusOr<OptimizerGolden> g = LoadOptimizerGolden(GetParam().name);
  ASSERT_TRUE(g.ok()) << g.status();
  ArrayParameters params(g->init);
  std::unique_ptr<Optimizer> opt = GetParam().make(params.Source(), ConfigOf(*g));
  params.SetGrads(g->grads[0]);
  ASSERT_TRUE(opt->Step(g->lr[0]).ok());
  ArrayParameters resumed_params(params.Values());
  std::unique_ptr<Optimizer> resumed = GetParam().make(resumed_params.Source(), ConfigOf(*g));
  ASSERT_TRUE(resumed->ImportState(opt->ExportState()).ok());
  EXPECT_EQ(resumed->ExportState(), opt->ExportState());
  for (size_t k = 1; k < g->lr.size(); ++k) {
    params.SetGrads(g->grads[k]);
    resumed_params.SetGrads(g->grads[k]);
    ASSERT_TRUE(opt->Step(g->lr[k]).ok());
    ASSERT_TRUE(resumed->Step(g->lr[k]).ok());
  }
  EXPECT_EQ(resumed_params.Values(), params.Values());
  EXPECT_EQ(resumed->ExportState(), opt->ExportState());
}

TEST_P(EigenOptimizerGoldenTest, BadStateIsRefusedAndChangesNothing) {
  absl::StatusOr<OptimizerGolden> g = LoadOptimizerGolden(GetParam().name);
  ASSERT_TRUE(g.ok()) << g.status();
  ArrayParameters params(g->init);
  std::unique_ptr<Optimizer> opt = GetParam().make(params.Source(), ConfigOf(*g));
  params.SetGrads(g->grads[0]);
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

INSTANTIATE_TEST_SUITE_P(
    Optimizers, EigenOptimizerGoldenTest,
    ::testing::Values(Case{"lars",
                           [](ParameterSource p, const OptimizerConfig& c) {
                             return std::unique_ptr<Optimizer>(new EigenLars(std::move(p), c));
                           }},
                      Case{"adamw",
                           [](ParameterSource p, const OptimizerConfig& c) {
                             return std::unique_ptr<Optimizer>(new EigenAdamW(std::move(p), c));
                           }}),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

TEST(EigenAdamWTest, StepCountIsPerParameterAndValidatedOnImport) {
  ArrayParameters params({{"a", HostArray({2}, {1, 2})}});
  EigenAdamW adamw(params.Source(), OptimizerConfig());
  params.SetGrads({{"a", HostArray({2}, {1, 1})}});
  ASSERT_TRUE(adamw.Step(0.1f).ok());
  ASSERT_TRUE(adamw.Step(0.1f).ok());
  NamedArrays s = adamw.ExportState();
  EXPECT_EQ(s.at("a.step"), HostArray({}, {2}));
  NamedArrays bad = s;
  bad["a.step"] = HostArray({}, {0.5f});
  EXPECT_THAT(std::string(adamw.ImportState(bad).message()), HasSubstr("a.step"));
  bad = s;
  bad.erase("a.exp_avg");
  EXPECT_THAT(std::string(adamw.ImportState(bad).message()), HasSubstr("a.exp_avg"));
  // At 2^24 steps the float32 count would stop being exact: Step refuses, changing nothing.
  s["a.step"] = HostArray({}, {16777216.0f});
  ASSERT_TRUE(adamw.ImportState(s).ok());
  const NamedArrays before = params.Values();
  const absl::Status st = adamw.Step(0.1f);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(st.message()), HasSubstr("2^24"));
  EXPECT_EQ(params.Values(), before);
}

}  // namespace
}  // namespace eigen_backend
}  // namespace moco
