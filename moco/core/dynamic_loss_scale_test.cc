#include "moco/core/dynamic_loss_scale.h"

#include <cmath>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moco {
namespace {

using ::testing::HasSubstr;

DynamicLossScale Make(const LossScaleOptions& options) {
  absl::StatusOr<DynamicLossScale> s = DynamicLossScale::Create(options);
  EXPECT_TRUE(s.ok()) << s.status();
  return *s;
}

TEST(DynamicLossScaleTest, DefaultsAreGradScalers) {
  const LossScalingConfig config;  // the proto's defaults
  const LossScaleOptions options = LossScaleOptionsFromConfig(config);
  EXPECT_EQ(options.init_scale, 65536.0f);
  EXPECT_EQ(options.growth_factor, 2.0f);
  EXPECT_EQ(options.backoff_factor, 0.5f);
  EXPECT_EQ(options.growth_interval, 2000);
  const DynamicLossScale s = Make(options);
  EXPECT_EQ(s.scale(), 65536.0f);
  EXPECT_EQ(s.inverse_scale(), 1.0f / 65536.0f);
}

TEST(DynamicLossScaleTest, EnabledByDefaultOnlyForFp16) {
  BackendConfig b;
  EXPECT_FALSE(LossScalingEnabled(b));
  b.set_precision(BackendConfig::BF16);
  EXPECT_FALSE(LossScalingEnabled(b));
  b.set_precision(BackendConfig::FP16);
  EXPECT_TRUE(LossScalingEnabled(b));
  b.mutable_loss_scaling()->set_enabled(false);
  EXPECT_FALSE(LossScalingEnabled(b));
  b.set_precision(BackendConfig::FP32);
  b.mutable_loss_scaling()->set_enabled(true);
  EXPECT_TRUE(LossScalingEnabled(b));
}

// The sequence GradScaler's rule gives, worked by hand: interval 3, growth 2, backoff 0.5.
TEST(DynamicLossScaleTest, BacksOffOnOverflowAndGrowsAfterIntervalFiniteSteps) {
  DynamicLossScale s = Make({/*init=*/1024, /*growth=*/2, /*backoff=*/0.5, /*interval=*/3});
  s.Update(true);
  s.Update(true);
  EXPECT_EQ(s.scale(), 1024);
  EXPECT_EQ(s.growth_tracker(), 2);
  s.Update(false);  // an overflow resets the count of finite steps
  EXPECT_EQ(s.scale(), 512);
  EXPECT_EQ(s.growth_tracker(), 0);
  EXPECT_EQ(s.skipped_steps(), 1);
  s.Update(true);
  s.Update(true);
  EXPECT_EQ(s.scale(), 512);
  s.Update(true);  // the third finite step in a row
  EXPECT_EQ(s.scale(), 1024);
  EXPECT_EQ(s.growth_tracker(), 0);
  s.Update(false);
  s.Update(false);
  EXPECT_EQ(s.scale(), 256);
  EXPECT_EQ(s.skipped_steps(), 3);
  EXPECT_EQ(s.inverse_scale(), 1.0f / 256);
}

TEST(DynamicLossScaleTest, GrowthStopsBeforeInfinity) {
  DynamicLossScale s = Make({/*init=*/std::ldexp(1.0f, 127), 2, 0.5, /*interval=*/1});
  s.Update(true);  // 2^128 is not a float: the scale stays, the tracker restarts
  EXPECT_EQ(s.scale(), std::ldexp(1.0f, 127));
  EXPECT_EQ(s.growth_tracker(), 0);
}

TEST(DynamicLossScaleTest, BackoffNeverReachesZero) {
  DynamicLossScale s = Make({/*init=*/1, 2, 0.5, 2000});
  for (int i = 0; i < 200; ++i) s.Update(false);
  EXPECT_GT(s.scale(), 0);
  EXPECT_EQ(s.scale(), std::numeric_limits<float>::denorm_min());
  EXPECT_EQ(s.skipped_steps(), 200);
}

TEST(DynamicLossScaleTest, CreateNamesTheBadOption) {
  const LossScaleOptions good;
  LossScaleOptions o = good;
  o.init_scale = 0;
  EXPECT_THAT(DynamicLossScale::Create(o).status().message(), HasSubstr("init_scale (0)"));
  o = good;
  o.init_scale = std::numeric_limits<float>::infinity();
  EXPECT_THAT(DynamicLossScale::Create(o).status().message(), HasSubstr("init_scale (inf)"));
  o = good;
  o.growth_factor = 1;
  EXPECT_THAT(DynamicLossScale::Create(o).status().message(), HasSubstr("growth_factor (1)"));
  o = good;
  o.backoff_factor = 1;
  EXPECT_THAT(DynamicLossScale::Create(o).status().message(), HasSubstr("backoff_factor (1)"));
  o = good;
  o.growth_interval = 0;
  EXPECT_THAT(DynamicLossScale::Create(o).status().message(), HasSubstr("growth_interval (0)"));
}

TEST(DynamicLossScaleTest, ExportImportContinuesTheSequence) {
  const LossScaleOptions options{1024, 2, 0.5, 3};
  DynamicLossScale a = Make(options);
  a.Update(false);
  a.Update(true);
  a.Update(true);
  DynamicLossScale b = Make(options);
  ASSERT_TRUE(b.Import(a.Export()).ok());
  EXPECT_EQ(b.scale(), 512);
  EXPECT_EQ(b.growth_tracker(), 2);
  EXPECT_EQ(b.skipped_steps(), 1);
  a.Update(true);
  b.Update(true);
  EXPECT_EQ(a.scale(), 1024);
  EXPECT_EQ(b.scale(), a.scale());
  EXPECT_EQ(b.Export(), a.Export());
}

TEST(DynamicLossScaleTest, ImportRejectsBadStateAndChangesNothing) {
  DynamicLossScale s = Make({1024, 2, 0.5, 3});
  const NamedArrays good = s.Export();
  auto expect_error = [&](NamedArrays state, const std::string& text) {
    const absl::Status status = s.Import(state);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(status.message(), HasSubstr(text));
    EXPECT_EQ(s.scale(), 1024);
    EXPECT_EQ(s.growth_tracker(), 0);
  };
  NamedArrays state = good;
  state.erase("scale");
  expect_error(state, "missing array 'scale'");
  state = good;
  state.emplace("extra", HostArray({}, {1.0f}));
  expect_error(state, "unexpected array 'extra'");
  state = good;
  state.at("scale") = HostArray({1}, {1.0f});
  expect_error(state, "'scale' has shape (1)");
  state = good;
  state.at("scale") = HostArray({}, {std::numeric_limits<float>::quiet_NaN()});
  expect_error(state, "'scale' is nan");
  state = good;
  state.at("growth_tracker") = HostArray({}, {3.0f});  // must be < growth_interval
  expect_error(state, "'growth_tracker' is 3");
  state = good;
  state.at("skipped_steps") = HostArray({}, {1.5f});
  expect_error(state, "'skipped_steps' is 1.5");
}

}  // namespace
}  // namespace moco
