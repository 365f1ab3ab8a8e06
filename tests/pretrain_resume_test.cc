// End to end: a tiny MoCo run on generated IDX data trains, checkpoints, stops mid-epoch,
// resumes, and ends bitwise identical to the same run done without interruption (CPU, same
// thread count). Also: a run folder holding a checkpoint is never overwritten, and a diverged
// (NaN) step stops the run with the last good checkpoint intact.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>

#include "data/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "moco/config/config_io.h"
#include "moco/pretrain/pretrain.h"
#include "moco/run/checkpoint.h"

namespace moco {
namespace {

using ::testing::HasSubstr;

ExperimentConfig TinyConfig(const std::string& data_dir, const std::string& run_dir) {
  ExperimentConfig c;
  const absl::Status s = ParseTextProto(R"pb(
    data {
      dataset: IDX
      image_size: 28
      num_workers: 2
      augmentation { preset: CIFAR normalize_mean: 0.3 normalize_std: 0.3 }
    }
    model {
      arch: "resnet18"
      cifar_stem: true
      width_multiplier: 0.0625
      in_channels: 1
      feature_dim: 16
    }
    moco { queue_size: 48 momentum: 0.9 temperature: 0.2 bn_splits: 4 }
    optimizer { lr: 0.05 weight_decay: 5e-4 schedule: COSINE }
    run {
      epochs: 3
      batch_size: 16
      seed: 11
      threads: 1
      log_every_steps: 1
      knn_every_epochs: 1
      knn_k: 5
      max_steps_per_epoch: 3
    }
    backend { name: "torch" }
  )pb", "tiny", &c);
  EXPECT_TRUE(s.ok()) << s;
  c.mutable_data()->set_train_path(data_dir);
  c.mutable_run()->set_run_dir(run_dir);
  return c;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The loss column of metrics.csv by step.
std::map<int64_t, std::string> LossesByStep(const std::string& run_dir) {
  std::map<int64_t, std::string> losses;
  std::istringstream lines(ReadFile(run_dir + "/metrics.csv"));
  std::string line;
  std::getline(lines, line);  // header
  while (std::getline(lines, line)) {
    std::vector<std::string> cells;
    std::stringstream cells_in(line);
    for (std::string cell; std::getline(cells_in, cell, ',');) cells.push_back(cell);
    losses[std::stoll(cells[0])] = cells[2];
  }
  return losses;
}

// Runs `make_config` (given a run folder) straight through and again stopped at step 5 of 9 and
// resumed; expects the same losses at every step, the same final kNN and bitwise-equal final
// checkpoints. Returns the straight run's checkpoint.
Checkpoint ExpectStopAndResumeIsBitwise(
    const std::function<ExperimentConfig(const std::string&)>& make_config) {
  const std::string dir_a = data::MakeTempDir("run_a");
  const std::string dir_b = data::MakeTempDir("run_b");

  PretrainOptions straight;
  straight.config = make_config(dir_a);
  straight.random_init_baseline = false;
  absl::StatusOr<PretrainSummary> a = RunPretraining(straight);
  EXPECT_TRUE(a.ok()) << a.status();
  if (!a.ok()) return {};
  EXPECT_EQ(a->global_step, 9);
  EXPECT_TRUE(a->knn_top1.has_value());

  // Stop mid-epoch (step 5 of 9: epoch 2, second batch), then resume with the file's config.
  PretrainOptions first_part = straight;
  first_part.config = make_config(dir_b);
  first_part.stop_at_step = 5;
  absl::StatusOr<PretrainSummary> b1 = RunPretraining(first_part);
  EXPECT_TRUE(b1.ok()) << b1.status();
  if (!b1.ok()) return {};
  EXPECT_TRUE(b1->stopped_by_signal);
  EXPECT_EQ(b1->global_step, 5);

  PretrainOptions resume;
  resume.resume = true;
  resume.run_dir_override = dir_b;
  resume.random_init_baseline = false;
  absl::StatusOr<PretrainSummary> b2 = RunPretraining(resume);
  EXPECT_TRUE(b2.ok()) << b2.status();
  if (!b2.ok()) return {};
  EXPECT_EQ(b2->global_step, 9);

  const auto losses_a = LossesByStep(dir_a);
  const auto losses_b = LossesByStep(dir_b);
  for (int64_t step = 1; step <= 9; ++step) {
    EXPECT_TRUE(losses_a.count(step) && losses_b.count(step)) << "step " << step;
    if (losses_a.count(step) && losses_b.count(step)) {
      EXPECT_EQ(losses_a.at(step), losses_b.at(step)) << "step " << step;
    }
  }
  if (a->knn_top1 && b2->knn_top1) {
    EXPECT_EQ(*a->knn_top1, *b2->knn_top1);
  }
  absl::StatusOr<Checkpoint> ckpt_a = ReadCheckpoint(CheckpointPath(dir_a));
  absl::StatusOr<Checkpoint> ckpt_b = ReadCheckpoint(CheckpointPath(dir_b));
  EXPECT_TRUE(ckpt_a.ok() && ckpt_b.ok());
  if (!ckpt_a.ok() || !ckpt_b.ok()) return {};
  EXPECT_EQ(ckpt_a->global_step, ckpt_b->global_step);
  EXPECT_EQ(ckpt_a->arrays.size(), ckpt_b->arrays.size());
  for (const auto& [name, array] : ckpt_a->arrays) {
    EXPECT_TRUE(ckpt_b->arrays.count(name)) << name;
    if (ckpt_b->arrays.count(name)) {
      EXPECT_EQ(array.data(), ckpt_b->arrays.at(name).data()) << name;
    }
  }
  return *std::move(ckpt_a);
}

TEST(PretrainResumeTest, InterruptedAndResumedRunEqualsUninterruptedRun) {
  const std::string data_dir = data::MakeQuadrantIdxDataset();
  const Checkpoint ckpt = ExpectStopAndResumeIsBitwise(
      [&](const std::string& run_dir) { return TinyConfig(data_dir, run_dir); });
  // Both encoders, the queue with its pointer, and SGD momentum are all in the checkpoint.
  EXPECT_TRUE(ckpt.arrays.count("query/layer4.1.bn2.running_var"));
  EXPECT_TRUE(ckpt.arrays.count("key/fc.2.weight"));
  EXPECT_TRUE(ckpt.arrays.count("queue/queue_ptr"));
  EXPECT_TRUE(ckpt.arrays.count("optimizer/conv1.weight"));
  ASSERT_TRUE(ckpt.arrays.count("queue/queue_ptr"));
  EXPECT_EQ(ckpt.arrays.at("queue/queue_ptr").data()[0], (9 * 16) % 48);
}

// The tiny run as MoCo v3: v3 heads, in-batch symmetric loss, per-step warmup + cosine, cosine
// key momentum.
ExperimentConfig TinyV3Config(const std::string& data_dir, const std::string& run_dir) {
  ExperimentConfig c = TinyConfig(data_dir, run_dir);
  c.clear_moco();
  c.mutable_moco()->set_method("moco_v3");
  c.mutable_moco()->set_momentum(0.9f);
  c.mutable_moco()->set_momentum_cosine_schedule(true);
  c.mutable_moco()->set_temperature(0.5f);
  c.mutable_model()->set_projector_hidden_dim(32);
  c.mutable_model()->set_predictor_hidden_dim(32);
  c.mutable_model()->set_zero_init_residual(true);
  c.mutable_optimizer()->set_schedule(OptimizerConfig::COSINE_PER_STEP);
  c.mutable_optimizer()->set_warmup_epochs(1);
  c.mutable_data()->mutable_augmentation()->set_preset(AugmentationConfig::MOCO_V3);
  return c;
}

TEST(PretrainResumeTest, MocoV3RunResumesBitwise) {
  const std::string data_dir = data::MakeQuadrantIdxDataset();
  const Checkpoint ckpt = ExpectStopAndResumeIsBitwise(
      [&](const std::string& run_dir) { return TinyV3Config(data_dir, run_dir); });
  // The query encoder carries the predictor, the key encoder does not, and there is no queue.
  EXPECT_TRUE(ckpt.arrays.count("query/predictor.3.weight"));
  EXPECT_TRUE(ckpt.arrays.count("query/fc.4.running_var"));
  EXPECT_FALSE(ckpt.arrays.count("key/predictor.0.weight"));
  EXPECT_TRUE(ckpt.arrays.count("key/fc.1.weight"));
  EXPECT_FALSE(ckpt.arrays.count("queue/queue"));
}

// model.init_from: a fresh run starts from another run's encoders and queue. After one step the
// key encoder is m * key + (1 - m) * query of the file's encoders, and the queue rows the step
// did not overwrite are the file's.
TEST(PretrainInitFromTest, FreshRunStartsFromTheFilesEncodersAndQueue) {
  const std::string data_dir = data::MakeQuadrantIdxDataset();
  const std::string dir_a = data::MakeTempDir("source");
  PretrainOptions source;
  source.config = TinyConfig(data_dir, dir_a);
  source.random_init_baseline = false;
  source.stop_at_step = 2;  // queue_ptr = 32: the next step writes rows 32..47
  ASSERT_TRUE(RunPretraining(source).ok());
  absl::StatusOr<Checkpoint> a = ReadCheckpoint(CheckpointPath(dir_a));
  ASSERT_TRUE(a.ok()) << a.status();

  const std::string dir_b = data::MakeTempDir("started");
  PretrainOptions started = source;
  started.config = TinyConfig(data_dir, dir_b);
  started.config->mutable_model()->set_init_from(CheckpointPath(dir_a));
  started.stop_at_step = 1;
  ASSERT_TRUE(RunPretraining(started).ok());
  absl::StatusOr<Checkpoint> b = ReadCheckpoint(CheckpointPath(dir_b));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->global_step, 1);

  const std::vector<float>& q = a->arrays.at("query/conv1.weight").data();
  const std::vector<float>& k = a->arrays.at("key/conv1.weight").data();
  const std::vector<float>& k_after = b->arrays.at("key/conv1.weight").data();
  ASSERT_EQ(k_after.size(), q.size());
  float largest_change = 0;
  for (size_t i = 0; i < q.size(); ++i) {
    EXPECT_NEAR(k_after[i], 0.9f * k[i] + 0.1f * q[i], 1e-6f) << i;
    largest_change = std::max(largest_change, std::abs(k_after[i] - k[i]));
  }
  EXPECT_GT(largest_change, 0.0f);  // the two encoders of the file differed: the check can fail
  const std::vector<float>& queue_a = a->arrays.at("queue/queue").data();
  const std::vector<float>& queue_b = b->arrays.at("queue/queue").data();
  const size_t rows_kept = 32 * 16;
  ASSERT_EQ(queue_b.size(), queue_a.size());
  EXPECT_TRUE(std::equal(queue_a.begin(), queue_a.begin() + rows_kept, queue_b.begin()));
  EXPECT_FALSE(std::equal(queue_a.begin() + rows_kept, queue_a.end(), queue_b.begin() + rows_kept));

  // A file of another architecture is refused, naming the field, the file and the first
  // mismatching array.
  PretrainOptions wider = started;
  wider.config = TinyConfig(data_dir, data::MakeTempDir("wider"));
  wider.config->mutable_model()->set_width_multiplier(0.125);
  wider.config->mutable_model()->set_init_from(CheckpointPath(dir_a));
  absl::StatusOr<PretrainSummary> refused = RunPretraining(wider);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("model.init_from"));
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr(CheckpointPath(dir_a)));
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("conv1.weight"));
}

// The cells of metrics.csv's column `name` by step (empty cells left out).
std::map<int64_t, std::string> ColumnByStep(const std::string& run_dir, const std::string& name) {
  std::istringstream lines(ReadFile(run_dir + "/metrics.csv"));
  std::string line;
  std::getline(lines, line);
  std::vector<std::string> header;
  std::stringstream header_in(line);
  for (std::string cell; std::getline(header_in, cell, ',');) header.push_back(cell);
  const size_t column = std::find(header.begin(), header.end(), name) - header.begin();
  std::map<int64_t, std::string> cells_by_step;
  while (std::getline(lines, line)) {
    std::vector<std::string> cells;
    std::stringstream cells_in(line + ",");  // a trailing empty cell survives getline
    for (std::string cell; std::getline(cells_in, cell, ',');) cells.push_back(cell);
    if (column < cells.size() && !cells[column].empty()) {
      cells_by_step[std::stoll(cells[0])] = cells[column];
    }
  }
  return cells_by_step;
}

// run.online_probe: trained beside pretraining, it changes none of the encoders' numbers, its
// top-1 is logged at every epoch end, and a resumed run continues it exactly.
TEST(OnlineProbeTest, LeavesPretrainingBitwiseUnchangedAndResumesExactly) {
  const std::string data_dir = data::MakeQuadrantIdxDataset();
  const std::string dir_plain = data::MakeTempDir("plain");
  PretrainOptions plain;
  plain.config = TinyConfig(data_dir, dir_plain);
  plain.random_init_baseline = false;
  ASSERT_TRUE(RunPretraining(plain).ok());

  auto with_probe = [&](const std::string& dir) {
    PretrainOptions o = plain;
    o.config = TinyConfig(data_dir, dir);
    o.config->mutable_run()->mutable_online_probe()->set_enabled(true);
    o.config->mutable_run()->mutable_online_probe()->set_lr(0.5);
    return o;
  };
  const std::string dir_probe = data::MakeTempDir("probe");
  ASSERT_TRUE(RunPretraining(with_probe(dir_probe)).ok());
  EXPECT_EQ(LossesByStep(dir_probe), LossesByStep(dir_plain));
  absl::StatusOr<Checkpoint> a = ReadCheckpoint(CheckpointPath(dir_plain));
  absl::StatusOr<Checkpoint> b = ReadCheckpoint(CheckpointPath(dir_probe));
  ASSERT_TRUE(a.ok() && b.ok());
  for (const auto& [name, array] : a->arrays) {
    ASSERT_TRUE(b->arrays.count(name)) << name;
    EXPECT_EQ(array.data(), b->arrays.at(name).data()) << name;
  }
  ASSERT_TRUE(b->arrays.count("probe/weight"));
  EXPECT_FALSE(a->arrays.count("probe/weight"));

  // One train and one test cell per epoch end (steps 3, 6, 9), in [0, 100]. (Nine steps of 16
  // images teach this probe little: that it learns is measured on the quickstart, RESULTS.md.)
  const auto test_top1 = ColumnByStep(dir_probe, "probe_test_top1");
  const auto train_top1 = ColumnByStep(dir_probe, "probe_train_top1");
  ASSERT_EQ(test_top1.size(), 3u);
  ASSERT_EQ(train_top1.size(), 3u);
  for (const auto& [step, cell] : test_top1) {
    EXPECT_EQ(step % 3, 0);
    EXPECT_GE(std::stod(cell), 0.0);
    EXPECT_LE(std::stod(cell), 100.0);
  }
  EXPECT_TRUE(ColumnByStep(dir_plain, "probe_test_top1").empty());

  // Stopped mid-epoch and resumed: the probe's weights, momentum and logged top-1 are those of
  // the uninterrupted run.
  const std::string dir_resumed = data::MakeTempDir("probe_resumed");
  PretrainOptions first = with_probe(dir_resumed);
  first.stop_at_step = 5;
  ASSERT_TRUE(RunPretraining(first).ok());
  PretrainOptions resume;
  resume.resume = true;
  resume.run_dir_override = dir_resumed;
  resume.random_init_baseline = false;
  ASSERT_TRUE(RunPretraining(resume).ok());
  absl::StatusOr<Checkpoint> c = ReadCheckpoint(CheckpointPath(dir_resumed));
  ASSERT_TRUE(c.ok());
  for (const char* name : {"probe/weight", "probe/bias", "probe/weight_momentum"}) {
    EXPECT_EQ(c->arrays.at(name).data(), b->arrays.at(name).data()) << name;
  }
  EXPECT_EQ(ColumnByStep(dir_resumed, "probe_test_top1"), test_top1);
  EXPECT_EQ(ColumnByStep(dir_resumed, "probe_train_top1"), train_top1);
}

TEST(PretrainResumeTest, NewRunRefusesAFolderWithACheckpointAndChangesNothing) {
  const std::string data_dir = data::MakeQuadrantIdxDataset();
  const std::string dir = data::MakeTempDir("run");
  PretrainOptions options;
  options.config = TinyConfig(data_dir, dir);
  options.config->mutable_run()->set_epochs(1);
  options.random_init_baseline = false;
  ASSERT_TRUE(RunPretraining(options).ok());
  const std::string before = ReadFile(CheckpointPath(dir));
  absl::StatusOr<PretrainSummary> again = RunPretraining(options);
  ASSERT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("pass --resume"));
  EXPECT_EQ(ReadFile(CheckpointPath(dir)), before);

  // Resuming with a config that differs from the checkpoint's is refused too, naming the field.
  PretrainOptions different = options;
  different.resume = true;
  different.config->mutable_moco()->set_temperature(0.5);
  absl::StatusOr<PretrainSummary> mismatch = RunPretraining(different);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_THAT(std::string(mismatch.status().message()), HasSubstr("temperature"));
}

TEST(PretrainResumeTest, NanLossStopsWithAClearErrorAndKeepsTheLastCheckpoint) {
  const std::string data_dir = data::MakeQuadrantIdxDataset();
  const std::string dir = data::MakeTempDir("run");
  PretrainOptions options;
  options.config = TinyConfig(data_dir, dir);
  options.random_init_baseline = false;
  options.stop_at_step = 3;
  ASSERT_TRUE(RunPretraining(options).ok());
  // Poison the query encoder's weights in the checkpoint; the next step's loss is NaN.
  absl::StatusOr<Checkpoint> ckpt = ReadCheckpoint(CheckpointPath(dir));
  ASSERT_TRUE(ckpt.ok());
  ckpt->arrays.at("query/fc.2.weight").mutable_data()[0] = std::nanf("");
  ASSERT_TRUE(WriteCheckpoint(CheckpointPath(dir), *ckpt).ok());
  const std::string poisoned = ReadFile(CheckpointPath(dir));

  PretrainOptions resume;
  resume.resume = true;
  resume.run_dir_override = dir;
  absl::StatusOr<PretrainSummary> r = RunPretraining(resume);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("loss is nan"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("step 4"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("last good checkpoint"));
  EXPECT_EQ(ReadFile(CheckpointPath(dir)), poisoned);
}

}  // namespace
}  // namespace moco
