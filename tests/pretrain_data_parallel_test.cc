// End to end, data parallel: the pretraining pipeline (RunPretraining) in two real processes
// over Gloo loopback, the way torchrun starts them (this binary re-executes itself with
// MOCO_DPP_TEST_WORKER=1 and torchrun's variables), on a tiny IDX run of 2 epochs x 3 steps.
//   - rank 0 alone writes the run folder (config, metrics.csv, checkpoints); both ranks train;
//   - a world-2 run stopped at step 4 and resumed on world 2 ends bitwise equal to the
//     uninterrupted world-2 run (CPU);
//   - the same stopped run resumes on world 1 (the checkpoint does not depend on the world);
//   - the online probe (trained on the all-gathered batch) and the sharded kNN monitor run;
//   - ranks started with different configs are refused at the rendezvous, before any step;
//   - a rank SIGKILLed mid-epoch makes the other exit non-zero (no hang; 60 s guard).
#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <iostream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "data/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "moco/config/config_io.h"
#include "moco/observe/training_observer.h"
#include "moco/pretrain/pretrain.h"
#include "moco/pretrain/trainer.h"
#include "moco/run/checkpoint.h"
#include "tests/spawn_ranks.h"

namespace moco {
namespace {

namespace fs = std::filesystem;

constexpr int kExitStopped = 75;  // kExitStoppedResumable

// Global batch 16: 8 images and 2 BN groups per rank in world 2.
ExperimentConfig TinyConfig(const std::string& data_dir, const std::string& run_dir,
                            float temperature) {
  ExperimentConfig c;
  const absl::Status s = ParseTextProto(R"pb(
    data {
      dataset: IDX
      image_size: 28
      num_workers: 1
      augmentation { preset: CIFAR normalize_mean: 0.3 normalize_std: 0.3 }
    }
    model {
      arch: "resnet18"
      cifar_stem: true
      width_multiplier: 0.0625
      in_channels: 1
      feature_dim: 16
    }
    moco { queue_size: 48 momentum: 0.9 bn_splits: 2 }
    optimizer { lr: 0.05 weight_decay: 5e-4 schedule: COSINE }
    run {
      epochs: 2
      batch_size: 16
      seed: 11
      threads: 1
      log_every_steps: 1
      knn_every_epochs: 1
      knn_k: 5
      max_steps_per_epoch: 3
      online_probe { enabled: true }
    }
    backend { name: "torch" }
  )pb", "tiny", &c);
  EXPECT_TRUE(s.ok()) << s;
  c.mutable_data()->set_train_path(data_dir);
  c.mutable_run()->set_run_dir(run_dir);
  c.mutable_moco()->set_temperature(temperature);
  return c;
}

// SIGKILLs this process after global step `step` (a rank lost mid-epoch).
class DieAtStep final : public TrainingObserver {
 public:
  explicit DieAtStep(int64_t step) : step_(step) {}
  absl::Status OnStep(const StepStats& stats) override {
    if (stats.global_step == step_) raise(SIGKILL);
    return absl::OkStatus();
  }

 private:
  int64_t step_;
};

// The worker: one rank of the pipeline, configured through the environment.
int Worker() {
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(v == nullptr ? "" : v);
  };
  PretrainOptions options;
  const float temperature = std::stof(env("DPP_TEMPERATURE"));
  options.config = TinyConfig(env("DPP_DATA"), env("DPP_RUN_DIR"), temperature);
  options.resume = env("DPP_RESUME") == "1";
  options.stop_at_step = std::stoll(env("DPP_STOP_AT"));
  options.random_init_baseline = false;
  options.distributed_timeout_s = 30;
  if (!env("DPP_DIE_AT").empty()) {  // this rank dies mid-epoch
    absl::StatusOr<std::unique_ptr<Trainer>> trainer = Trainer::Create(options);
    if (!trainer.ok()) return 1;
    (*trainer)->AddObserver(std::make_unique<DieAtStep>(std::stoll(env("DPP_DIE_AT"))));
    return (*trainer)->Run().ok() ? 0 : 1;
  }
  absl::StatusOr<PretrainSummary> summary = RunPretraining(options);
  if (!summary.ok()) {
    std::cerr << "rank " << env("RANK") << ": " << summary.status() << "\n";
    if (!env("DPP_ERROR_FILE").empty()) std::ofstream(env("DPP_ERROR_FILE")) << summary.status();
    return 1;
  }
  return summary->stopped_by_signal ? kExitStopped : 0;
}

std::vector<std::string> WorkerEnv(const std::string& data, const std::string& run_dir,
                                   bool resume, int stop_at, float temperature = 0.2f) {
  return {"MOCO_DPP_TEST_WORKER=1", "DPP_DATA=" + data, "DPP_RUN_DIR=" + run_dir,
          absl::StrCat("DPP_RESUME=", resume ? 1 : 0), absl::StrCat("DPP_STOP_AT=", stop_at),
          absl::StrCat("DPP_TEMPERATURE=", temperature)};
}

Checkpoint ReadCheckpoint(const std::string& run_dir) {
  absl::StatusOr<Checkpoint> c = ReadLatestCheckpoint(run_dir);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *std::move(c) : Checkpoint();
}

std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(PretrainDataParallelTest, TwoRanksTrainRankZeroWritesAndResumeIsExactOnAnyWorld) {
  const std::string data_dir = data::MakeQuadrantIdxDataset();
  const std::string straight = data::MakeTempDir("dp_straight");
  EXPECT_EQ(testing::RunRanks(2, WorkerEnv(data_dir, straight, false, 0), 120),
            std::vector<int>({0, 0}));
  const Checkpoint a = ReadCheckpoint(straight);
  EXPECT_EQ(a.global_step, 6);
  // One writer: no temporary or per-rank leftovers; metrics.csv has one row per step.
  for (const std::string& name : Entries(straight)) {
    EXPECT_EQ(name.find(".tmp"), std::string::npos) << name;
  }
  EXPECT_TRUE(fs::exists(straight + "/config.pbtxt"));
  std::ifstream csv(straight + "/metrics.csv");
  std::string line;
  int rows = 0;
  while (std::getline(csv, line)) ++rows;
  EXPECT_GE(rows, 7);  // header + 6 steps (+ epoch rows if any)

  // Stopped at step 4, resumed on world 2: bitwise the uninterrupted run.
  const std::string resumed = data::MakeTempDir("dp_resumed");
  EXPECT_EQ(testing::RunRanks(2, WorkerEnv(data_dir, resumed, false, 4), 120),
            std::vector<int>({kExitStopped, kExitStopped}));
  EXPECT_EQ(ReadCheckpoint(resumed).global_step, 4);
  const std::string on_one = data::MakeTempDir("dp_on_one");
  fs::copy(resumed, on_one, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  EXPECT_EQ(testing::RunRanks(2, WorkerEnv(data_dir, resumed, true, 0), 120),
            std::vector<int>({0, 0}));
  const Checkpoint b = ReadCheckpoint(resumed);
  EXPECT_EQ(b.global_step, 6);
  ASSERT_EQ(a.arrays.size(), b.arrays.size());
  for (const auto& [name, array] : a.arrays) {
    ASSERT_TRUE(b.arrays.count(name)) << name;
    EXPECT_TRUE(array.data() == b.arrays.at(name).data()) << name << " differs after resume";
  }

  // The world-2 checkpoint resumes in one process (world 1).
  PretrainOptions one;
  one.config = TinyConfig(data_dir, on_one, 0.2f);
  one.resume = true;
  one.random_init_baseline = false;
  absl::StatusOr<PretrainSummary> single = RunPretraining(one);
  ASSERT_TRUE(single.ok()) << single.status();
  EXPECT_EQ(single->global_step, 6);
  EXPECT_EQ(ReadCheckpoint(on_one).global_step, 6);
}

TEST(PretrainDataParallelTest, RanksWithDifferentConfigsAreRefusedBeforeTheFirstStep) {
  const std::string data_dir = data::MakeQuadrantIdxDataset();
  const std::string run_dir = data::MakeTempDir("dp_mismatch");
  const int port = testing::FreePort();
  const pid_t r0 = testing::SpawnRank(0, 2, port, WorkerEnv(data_dir, run_dir, false, 0, 0.2f));
  const pid_t r1 = testing::SpawnRank(1, 2, port, WorkerEnv(data_dir, run_dir, false, 0, 0.3f));
  EXPECT_EQ(testing::WaitExit(r0, 120), 1);
  EXPECT_EQ(testing::WaitExit(r1, 120), 1);
  EXPECT_FALSE(fs::exists(run_dir + "/checkpoint.ckpt"));
  EXPECT_FALSE(fs::exists(run_dir + "/metrics.csv"));
}

TEST(PretrainDataParallelTest, ARankKilledMidEpochMakesTheOthersFail) {
  const std::string data_dir = data::MakeQuadrantIdxDataset();
  const std::string run_dir = data::MakeTempDir("dp_killed");
  const int port = testing::FreePort();
  std::vector<std::string> dying = WorkerEnv(data_dir, run_dir, false, 0);
  dying.push_back("DPP_DIE_AT=2");
  std::vector<std::string> surviving = WorkerEnv(data_dir, run_dir, false, 0);
  const std::string error_file = run_dir + ".error";
  surviving.push_back("DPP_ERROR_FILE=" + error_file);
  const pid_t r0 = testing::SpawnRank(0, 2, port, surviving);
  const pid_t r1 = testing::SpawnRank(1, 2, port, dying);
  EXPECT_EQ(testing::WaitExit(r1, 120), 128 + SIGKILL);
  EXPECT_EQ(testing::WaitExit(r0, 60), 1) << "rank 0 must fail, not hang (-1 = the guard)";
  std::ifstream in(error_file);
  const std::string error((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_THAT(error, ::testing::HasSubstr("failed on rank 0 of 2 (rank 1 exited or lost its "
                                          "connection)"));
  EXPECT_FALSE(fs::exists(run_dir + "/checkpoint.ckpt"));  // no checkpoint from a broken step
}

}  // namespace
}  // namespace moco

int main(int argc, char** argv) {
  if (const char* worker = std::getenv("MOCO_DPP_TEST_WORKER"); worker && *worker == '1') {
    return moco::Worker();
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
