#include "moco/schedules/schedules.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moco {
namespace {

using ::testing::HasSubstr;

// Relative tolerance of a float result against a value computed by hand in double.
constexpr double kRel = 1e-6;

OptimizerConfig Optimizer(OptimizerConfig::Schedule schedule, float lr) {
  OptimizerConfig c;
  c.set_schedule(schedule);
  c.set_lr(lr);
  return c;
}

LearningRateSchedule MustCreate(const OptimizerConfig& c, int epochs, int64_t steps) {
  absl::StatusOr<LearningRateSchedule> s = LearningRateSchedule::Create(c, epochs, steps);
  EXPECT_TRUE(s.ok()) << s.status();
  return *std::move(s);
}

TEST(LearningRateScheduleTest, CosineAtEpochBoundaries) {
  // lr = 0.03 * 0.5 * (1 + cos(pi * epoch / 200)).
  const LearningRateSchedule s = MustCreate(Optimizer(OptimizerConfig::COSINE, 0.03f), 200, 7);
  EXPECT_EQ(s.warmup_steps(), 0);
  // First step: cos(0) = 1, the full lr (the float nearest 0.03).
  EXPECT_EQ(s.At(0, 0), 0.03f);
  // Epoch 50: cos(pi/4) = 0.7071067812 -> 0.03 * 0.8535533906 = 0.02560660172.
  EXPECT_NEAR(s.At(50, 0), 0.02560660172, 0.02560660172 * kRel);
  // Half way: cos(pi/2) = 0 -> 0.015.
  EXPECT_NEAR(s.At(100, 0), 0.015, 0.015 * kRel);
  // Last epoch: 0.015 * (1 - cos(pi/200)); 1 - cos(x) = x^2/2 - x^4/24 + ... with
  // x = 0.01570796327 gives 1.233675e-4, so lr = 1.850513e-6 (not 0: the cosine is evaluated at
  // the epoch's start, as the official code does).
  EXPECT_NEAR(s.At(199, 6), 1.850513e-6, 1.850513e-6 * 1e-5);
}

TEST(LearningRateScheduleTest, CosinePerStepWarmsUpThenFollowsTheCosinePerStep) {
  // MoCo v3: 10 epochs of 4 steps, lr 2.4, warmup 2 epochs.
  OptimizerConfig c = Optimizer(OptimizerConfig::COSINE_PER_STEP, 2.4f);
  c.set_warmup_epochs(2);
  const LearningRateSchedule s = MustCreate(c, 10, 4);
  EXPECT_EQ(s.warmup_steps(), 0);
  EXPECT_EQ(s.At(0, 0), 0.0f);                      // e = 0: v3's first step has lr 0
  EXPECT_NEAR(s.At(0, 1), 0.3, 0.3 * kRel);         // e = 0.25: 2.4 * 0.25 / 2
  EXPECT_NEAR(s.At(1, 3), 2.1, 2.1 * kRel);         // e = 1.75: 2.4 * 1.75 / 2
  EXPECT_NEAR(s.At(2, 0), 2.4, 2.4 * kRel);         // e = 2: the cosine starts at 1
  // e = 6: progress (6 - 2) / 8 = 0.5, cos(pi/2) = 0 -> 1.2.
  EXPECT_NEAR(s.At(6, 0), 1.2, 1.2 * kRel);
  // e = 9.75: progress 7.75 / 8, 0.5 * (1 + cos(0.96875 pi)) = 0.5 * (1 - 0.99518473) ->
  // 2.4 * 0.00240764 = 0.00577833; it changes within an epoch.
  EXPECT_NEAR(s.At(9, 3), 0.00577833, 0.00577833 * 1e-5);
  EXPECT_GT(s.At(9, 2), s.At(9, 3));
}

TEST(LearningRateScheduleTest, CosinePerStepRejectsWarmupAsLongAsTraining) {
  OptimizerConfig c = Optimizer(OptimizerConfig::COSINE_PER_STEP, 1.0f);
  c.set_warmup_epochs(10);
  absl::StatusOr<LearningRateSchedule> s = LearningRateSchedule::Create(c, 10, 4);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("optimizer.warmup_epochs"));
}

TEST(LearningRateScheduleTest, CosineChangesOnlyAtEpochBoundaries) {
  const LearningRateSchedule s = MustCreate(Optimizer(OptimizerConfig::COSINE, 0.1f), 10, 5);
  for (int epoch = 0; epoch < 10; ++epoch) {
    for (int step = 1; step < 5; ++step) EXPECT_EQ(s.At(epoch, step), s.At(epoch, 0));
  }
  EXPECT_LT(s.At(3, 0), s.At(2, 4));
}

TEST(LearningRateScheduleTest, MultiStepAtMilestones) {
  // v1: 0.03, x0.1 at epochs 120 and 160 of 200.
  OptimizerConfig c = Optimizer(OptimizerConfig::MULTI_STEP, 0.03f);
  c.add_milestones(120);
  c.add_milestones(160);
  c.set_gamma(0.1f);
  const LearningRateSchedule s = MustCreate(c, 200, 3);
  EXPECT_EQ(s.At(0, 0), 0.03f);
  EXPECT_EQ(s.At(119, 2), 0.03f);
  EXPECT_NEAR(s.At(120, 0), 0.003, 0.003 * kRel);
  EXPECT_NEAR(s.At(159, 2), 0.003, 0.003 * kRel);
  EXPECT_NEAR(s.At(160, 0), 0.0003, 0.0003 * kRel);
  EXPECT_NEAR(s.At(199, 2), 0.0003, 0.0003 * kRel);
}

TEST(LearningRateScheduleTest, ConstantIsConstant) {
  const LearningRateSchedule s = MustCreate(Optimizer(OptimizerConfig::CONSTANT, 0.5f), 4, 2);
  EXPECT_EQ(s.At(0, 0), 0.5f);
  EXPECT_EQ(s.At(3, 1), 0.5f);
}

TEST(LearningRateScheduleTest, LinearWarmupPerStep) {
  // 2 warmup epochs of 5 steps: warmup_steps = 10, lr * (global_step + 1) / 10.
  OptimizerConfig c = Optimizer(OptimizerConfig::CONSTANT, 0.1f);
  c.set_warmup_epochs(2);
  const LearningRateSchedule s = MustCreate(c, 20, 5);
  EXPECT_EQ(s.warmup_steps(), 10);
  EXPECT_NEAR(s.At(0, 0), 0.01, 0.01 * kRel);  // first step: 1/10
  EXPECT_NEAR(s.At(0, 4), 0.05, 0.05 * kRel);  // global step 4: 5/10
  EXPECT_NEAR(s.At(1, 0), 0.06, 0.06 * kRel);  // global step 5: 6/10
  EXPECT_EQ(s.At(1, 4), 0.1f);                 // last warmup step reaches the full lr
  EXPECT_EQ(s.At(2, 0), 0.1f);                 // after the warmup
}

TEST(LearningRateScheduleTest, FractionalWarmupRoundsToSteps) {
  // 0.5 epochs of 5 steps = 2.5 -> 3 warmup steps.
  OptimizerConfig c = Optimizer(OptimizerConfig::CONSTANT, 0.3f);
  c.set_warmup_epochs(0.5f);
  const LearningRateSchedule s = MustCreate(c, 3, 5);
  EXPECT_EQ(s.warmup_steps(), 3);
  EXPECT_NEAR(s.At(0, 0), 0.1, 0.1 * kRel);
  EXPECT_NEAR(s.At(0, 1), 0.2, 0.2 * kRel);
  EXPECT_EQ(s.At(0, 2), 0.3f);
  EXPECT_EQ(s.At(0, 3), 0.3f);
}

TEST(LearningRateScheduleTest, WarmupMultipliesCosine) {
  // Cosine over 10 epochs of 4 steps with 1 warmup epoch (4 steps).
  OptimizerConfig c = Optimizer(OptimizerConfig::COSINE, 0.03f);
  c.set_warmup_epochs(1);
  const LearningRateSchedule s = MustCreate(c, 10, 4);
  EXPECT_NEAR(s.At(0, 1), 0.015, 0.015 * kRel);  // 0.03 * cos-factor 1 * 2/4
  EXPECT_EQ(s.At(0, 3), 0.03f);                  // warmup end
  // Epoch 1: 0.015 * (1 + cos(pi/10)) = 0.015 * 1.951056516 = 0.02926584774.
  EXPECT_NEAR(s.At(1, 0), 0.02926584774, 0.02926584774 * kRel);
}

TEST(LearningRateScheduleTest, WarmupCrossesMilestone) {
  // Warmup still scales the step value after a milestone inside the warmup.
  OptimizerConfig c = Optimizer(OptimizerConfig::MULTI_STEP, 1.0f);
  c.add_milestones(1);
  c.set_gamma(0.5f);
  c.set_warmup_epochs(2);
  const LearningRateSchedule s = MustCreate(c, 4, 2);  // warmup_steps = 4
  EXPECT_NEAR(s.At(0, 1), 0.5, 0.5 * kRel);    // 1.0 * 2/4
  EXPECT_NEAR(s.At(1, 0), 0.375, 0.375 * kRel);  // 0.5 * 3/4
  EXPECT_EQ(s.At(1, 1), 0.5f);                 // 0.5 * 4/4
}

TEST(LearningRateScheduleTest, RejectsBadConfigNamingTheField) {
  OptimizerConfig c = Optimizer(OptimizerConfig::MULTI_STEP, 0.03f);
  c.add_milestones(120);
  c.add_milestones(100);
  absl::StatusOr<LearningRateSchedule> s = LearningRateSchedule::Create(c, 200, 10);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("optimizer.milestones[1] (100)"));

  c.clear_milestones();
  c.set_gamma(0);
  s = LearningRateSchedule::Create(c, 200, 10);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("optimizer.gamma"));

  s = LearningRateSchedule::Create(Optimizer(OptimizerConfig::COSINE, -1.0f), 200, 10);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("optimizer.lr (-1)"));

  OptimizerConfig w = Optimizer(OptimizerConfig::COSINE, 0.03f);
  w.set_warmup_epochs(-2);
  s = LearningRateSchedule::Create(w, 200, 10);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("optimizer.warmup_epochs"));

  s = LearningRateSchedule::Create(Optimizer(OptimizerConfig::COSINE, 0.03f), 0, 10);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("run.epochs (0)"));

  s = LearningRateSchedule::Create(Optimizer(OptimizerConfig::COSINE, 0.03f), 10, 0);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("steps per epoch (0)"));
}

TEST(KeyMomentumTest, ConstantWithoutSchedule) {
  MocoConfig c;
  c.set_momentum(0.99f);
  EXPECT_EQ(KeyMomentumAt(c, 0, 1000), 0.99f);
  EXPECT_EQ(KeyMomentumAt(c, 999, 1000), 0.99f);
}

TEST(KeyMomentumTest, CosineScheduleAtBoundaries) {
  // m(t) = 1 - 0.01 * (cos(pi t / 1000) + 1) / 2.
  MocoConfig c;
  c.set_momentum(0.99f);
  c.set_momentum_cosine_schedule(true);
  EXPECT_EQ(KeyMomentumAt(c, 0, 1000), 0.99f);  // first step: m0
  // t = 250: 1 - 0.01 * (0.7071067812 + 1) / 2 = 0.9914644661.
  EXPECT_NEAR(KeyMomentumAt(c, 250, 1000), 0.9914644661, 1e-7);
  EXPECT_NEAR(KeyMomentumAt(c, 500, 1000), 0.995, 1e-7);  // half way
  // Last step t = 999: 1 - 0.005 * (1 - cos(pi/1000)) = 1 - 0.005 * 4.9348e-6 = 0.99999997533.
  EXPECT_NEAR(KeyMomentumAt(c, 999, 1000), 0.99999997533, 1e-7);
  EXPECT_EQ(KeyMomentumAt(c, 1000, 1000), 1.0f);  // t = T
  EXPECT_EQ(KeyMomentumAt(c, 5000, 1000), 1.0f);  // clamped
}

}  // namespace
}  // namespace moco
