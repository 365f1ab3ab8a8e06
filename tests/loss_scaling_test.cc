// Dynamic loss scaling (backend.loss_scaling) through the real training methods on both
// backends, in fp32 on the CPU (fp16 compute exists only on CUDA; the scaling is the same code):
//
// - Exactness: the default scale 2^16 is a power of two, so scaling the loss gradient and
//   unscaling the parameter gradients are exact in fp32 (no gradient here is near the overflow
//   or the subnormal range), and a run with scaling must equal the run without it bit for bit,
//   state and losses, for v2 (queue, symmetric) and v3. A scale applied twice, never undone or
//   undone before the gradient average would break this by factors of 2^16.
// - Overflow: init_scale 2^127 makes the scaled gradients overflow fp32 (measured: the first
//   steps overflow, and the scale comes down by half per step until one fits); a skipped step
//   must leave the query encoder's parameters and the optimizer state bit for bit as they were
//   (its BN running statistics move in the forward, as in PyTorch), still enqueue
//   the keys, halve the scale, and count the skip; the first step
//   that fits must update the query encoder.
// - Checkpoint: the scale's state is exported under "loss_scale/" and a method restored from
//   it continues bit for bit; a checkpoint without it, or with it into a run without scaling,
//   is an error naming the array.
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "moco/core/backend_registry.h"
#include "moco/core/method_registry.h"
#include "moco/core/training_method.h"

namespace moco {
namespace {

using ::testing::HasSubstr;

constexpr int kBatch = 8;

ExperimentConfig V2Config() {
  ExperimentConfig c;
  ModelConfig* m = c.mutable_model();
  m->set_arch("resnet18");
  m->set_cifar_stem(true);
  m->set_width_multiplier(0.0625f);
  m->set_in_channels(3);
  m->set_feature_dim(16);
  m->set_mlp_head(true);
  MocoConfig* moco = c.mutable_moco();
  moco->set_queue_size(32);
  moco->set_temperature(0.2f);
  moco->set_symmetric_loss(true);
  moco->set_bn_splits(2);
  OptimizerConfig* o = c.mutable_optimizer();
  o->set_lr(0.1f);
  o->set_momentum(0.9f);
  o->set_weight_decay(5e-4f);
  c.mutable_run()->set_seed(11);
  c.mutable_run()->set_batch_size(kBatch);
  return c;
}

ExperimentConfig V3Config() {
  ExperimentConfig c = V2Config();
  c.clear_moco();
  c.mutable_moco()->set_method("moco_v3");
  c.mutable_moco()->set_temperature(0.2f);
  c.mutable_model()->set_projector_hidden_dim(32);
  c.mutable_model()->set_predictor_hidden_dim(32);
  OptimizerConfig* o = c.mutable_optimizer();
  o->set_algorithm(OptimizerConfig::LARS);
  o->set_lr(0.5f);
  o->set_weight_decay(1e-6f);
  return c;
}

ExperimentConfig WithScaling(ExperimentConfig c, float init_scale) {
  c.mutable_backend()->mutable_loss_scaling()->set_enabled(true);
  c.mutable_backend()->mutable_loss_scaling()->set_init_scale(init_scale);
  return c;
}

HostArray Images(uint64_t seed) {
  HostArray a({kBatch, 3, 8, 8});
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd;
  for (float& v : a.mutable_data()) v = nd(rng);
  return a;
}

NamedArrays WithPrefix(const NamedArrays& all, const std::string& prefix) {
  NamedArrays out;
  for (const auto& [name, a] : all) {
    if (absl::StartsWith(name, prefix)) out.emplace(name, a);
  }
  return out;
}

// The parameters under `prefix` (BN running statistics move in every training forward).
NamedArrays ParametersWithPrefix(const NamedArrays& all, const std::string& prefix) {
  NamedArrays out = WithPrefix(all, prefix);
  for (auto it = out.begin(); it != out.end();) {
    const bool buffer = absl::StrContains(it->first, "running_") ||
                        absl::StrContains(it->first, "num_batches_tracked");
    it = buffer ? out.erase(it) : std::next(it);
  }
  return out;
}

NamedArrays WithoutLossScale(NamedArrays all) {
  for (auto it = all.begin(); it != all.end();) {
    it = absl::StartsWith(it->first, "loss_scale/") ? all.erase(it) : std::next(it);
  }
  return all;
}

struct TrainingRun {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<TrainingMethod> method;
};

TrainingRun Make(const std::string& backend, const ExperimentConfig& config) {
  TrainingRun run;
  auto b = CreateBackend(backend, BackendOptions{"cpu", 1});
  EXPECT_TRUE(b.ok()) << b.status();
  run.backend = std::move(*b);
  auto m = CreateTrainingMethod(config, *run.backend);
  EXPECT_TRUE(m.ok()) << m.status();
  run.method = std::move(*m);
  return run;
}

MethodStepResult Step(TrainingRun& run, int step) {
  auto v1 = run.backend->Upload(Images(100 + step));
  auto v2 = run.backend->Upload(Images(200 + step));
  EXPECT_TRUE(v1.ok() && v2.ok());
  StepContext context;
  context.lr = 0.1f;
  context.key_momentum = 0.99f;
  context.step_seed = 1000 + step;
  absl::StatusOr<MethodStepResult> r = run.method->Step(**v1, **v2, context);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : MethodStepResult{};
}

NamedArrays State(const TrainingRun& run) {
  absl::StatusOr<NamedArrays> s = run.method->ExportState();
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : NamedArrays{};
}

class LossScalingTest : public ::testing::TestWithParam<std::string> {};

void ExpectScalingIsExact(const std::string& backend, const ExperimentConfig& config) {
  TrainingRun plain = Make(backend, config);
  TrainingRun scaled = Make(backend, WithScaling(config, 65536.0f));
  for (int step = 0; step < 3; ++step) {
    const MethodStepResult a = Step(plain, step);
    const MethodStepResult b = Step(scaled, step);
    EXPECT_EQ(a.loss, b.loss) << "step " << step;
    EXPECT_FALSE(a.loss_scale.has_value());
    ASSERT_TRUE(b.loss_scale.has_value());
    EXPECT_EQ(*b.loss_scale, 65536.0f);
    EXPECT_FALSE(b.skipped_update);
    // Bitwise: operator== on HostArray compares every float.
    EXPECT_TRUE(State(plain) == WithoutLossScale(State(scaled))) << "step " << step;
  }
  EXPECT_EQ(State(scaled).at("loss_scale/growth_tracker").data()[0], 3.0f);
}

// The precondition of the exactness tests: fresh runs in one process repeat each other bit for
// bit, wherever the allocator puts their buffers (each run is made after a different amount of
// held ballast). The eigen backend once failed it: Eigen's vectorized colwise().sum() of the
// head's bias gradient rounded differently from one allocation to the next (ulps of fc.2.bias).
TEST_P(LossScalingTest, FreshRunsRepeatEachOtherBitwise) {
  for (const ExperimentConfig& config : {V2Config(), V3Config()}) {
    TrainingRun reference = Make(GetParam(), config);
    for (int step = 0; step < 2; ++step) Step(reference, step);
    std::vector<std::vector<float>> ballast;
    for (int k = 1; k <= 4; ++k) {
      ballast.emplace_back(static_cast<size_t>(k * 3 + 1));
      TrainingRun other = Make(GetParam(), config);
      for (int step = 0; step < 2; ++step) Step(other, step);
      EXPECT_TRUE(State(reference) == State(other)) << config.moco().method() << " run " << k;
    }
  }
}

TEST_P(LossScalingTest, PowerOfTwoScaleChangesNothingV2) { ExpectScalingIsExact(GetParam(), V2Config()); }
TEST_P(LossScalingTest, PowerOfTwoScaleChangesNothingV3) { ExpectScalingIsExact(GetParam(), V3Config()); }

TEST_P(LossScalingTest, OverflowSkipsTheUpdateAndBacksOff) {
  const float huge = std::ldexp(1.0f, 127);
  TrainingRun run = Make(GetParam(), WithScaling(V2Config(), huge));
  float expected_scale = huge;
  int skipped = 0;
  for (int step = 0; step < 40; ++step) {
    const NamedArrays before = State(run);
    const MethodStepResult r = Step(run, step);
    const NamedArrays after = State(run);
    ASSERT_TRUE(r.loss_scale.has_value());
    EXPECT_EQ(*r.loss_scale, expected_scale) << "step " << step;
    if (!r.skipped_update) {
      EXPECT_FALSE(ParametersWithPrefix(before, "query/") == ParametersWithPrefix(after, "query/"))
          << "the first step that fits must update the query encoder";
      EXPECT_EQ(after.at("loss_scale/scale").data()[0], expected_scale);
      break;
    }
    ++skipped;
    EXPECT_EQ(r.skipped_steps, skipped);
    EXPECT_TRUE(ParametersWithPrefix(before, "query/") == ParametersWithPrefix(after, "query/"))
        << "skipped step " << step << " changed the query encoder";
    EXPECT_TRUE(WithPrefix(before, "optimizer/") == WithPrefix(after, "optimizer/"))
        << "skipped step " << step << " changed the optimizer state";
    // (The momentum update still runs, but towards an unchanged query encoder that it equals.)
    EXPECT_FALSE(WithPrefix(before, "queue/") == WithPrefix(after, "queue/"))
        << "the keys are still enqueued on a skipped step";
    expected_scale *= 0.5f;
    EXPECT_EQ(after.at("loss_scale/scale").data()[0], expected_scale);
    EXPECT_EQ(after.at("loss_scale/skipped_steps").data()[0], static_cast<float>(skipped));
  }
  EXPECT_GE(skipped, 1) << "2^127 should overflow the scaled fp32 gradients";
  EXPECT_LT(skipped, 40) << "the scale never came down far enough to fit";
}

TEST_P(LossScalingTest, CheckpointContinuesBitwise) {
  const ExperimentConfig config = WithScaling(V3Config(), std::ldexp(1.0f, 127));
  TrainingRun a = Make(GetParam(), config);
  for (int step = 0; step < 2; ++step) Step(a, step);
  TrainingRun b = Make(GetParam(), config);
  ASSERT_TRUE(b.method->ImportState(State(a)).ok());
  for (int step = 2; step < 5; ++step) {
    const MethodStepResult ra = Step(a, step);
    const MethodStepResult rb = Step(b, step);
    EXPECT_EQ(ra.loss, rb.loss);
    EXPECT_EQ(ra.loss_scale, rb.loss_scale);
    EXPECT_EQ(ra.skipped_update, rb.skipped_update);
  }
  EXPECT_TRUE(State(a) == State(b));
}

TEST_P(LossScalingTest, CheckpointMismatchNamesTheArray) {
  TrainingRun scaled = Make(GetParam(), WithScaling(V2Config(), 65536.0f));
  TrainingRun plain = Make(GetParam(), V2Config());
  absl::Status s = scaled.method->ImportState(State(plain));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("missing array 'growth_tracker'"));
  s = plain.method->ImportState(State(scaled));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("unexpected array 'loss_scale/"));
}

TEST(LossScalingConfigTest, BadOptionNamesTheField) {
  ExperimentConfig c = WithScaling(V2Config(), 65536.0f);
  c.mutable_backend()->mutable_loss_scaling()->set_backoff_factor(2.0f);
  auto backend = CreateBackend("eigen", BackendOptions{"cpu", 1});
  ASSERT_TRUE(backend.ok());
  auto method = CreateTrainingMethod(c, **backend);
  ASSERT_FALSE(method.ok());
  EXPECT_THAT(method.status().message(), HasSubstr("backend.loss_scaling"));
  EXPECT_THAT(method.status().message(), HasSubstr("backoff_factor (2)"));
}

INSTANTIATE_TEST_SUITE_P(Backends, LossScalingTest, ::testing::Values("torch", "eigen"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace moco
