#include "moco/observe/observers.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "moco/observe/events/event_file.h"
#include "moco/observe/run_data.h"
#include "moco/observe/synthetic_run.h"

namespace moco {
namespace observe {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using ::testing::StartsWith;

std::string NewDir(const std::string& name) {
  const fs::path dir = fs::path(std::getenv("TEST_TMPDIR")) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// (step, tag) -> value over every training event file; fails on a duplicate.
std::map<std::pair<int64_t, std::string>, float> AllScalars(const std::string& dir) {
  std::map<std::pair<int64_t, std::string>, float> out;
  for (const auto& path : tfevents::ListEventFiles(dir, /*include_eval=*/false)) {
    auto events = tfevents::ReadEventFile(path);
    EXPECT_TRUE(events.ok()) << events.status();
    if (!events.ok()) continue;
    EXPECT_EQ((*events)[0].file_version(), "brain.Event:2") << path;
    for (const auto& e : *events) {
      for (const auto& v : e.summary().value()) {
        EXPECT_TRUE(out.emplace(std::make_pair(e.step(), v.tag()), v.simple_value()).second)
            << "step " << e.step() << " tag " << v.tag() << " twice";
      }
    }
  }
  return out;
}

TEST(ObserversTest, FreshRunWritesEventsMatchingMetricsCsvAndAReport) {
  SyntheticRun run;
  run.run_dir = NewDir("fresh");
  ASSERT_TRUE(DriveSyntheticRun(run).ok());
  ASSERT_THAT(tfevents::ListEventFiles(run.run_dir), SizeIs(1));
  const auto scalars = AllScalars(run.run_dir);
  auto csv = ParseMetricsCsv(ReadText(run.run_dir + "/metrics.csv"), "metrics.csv");
  ASSERT_TRUE(csv.ok());
  const Series& loss = (*csv)["loss"];
  ASSERT_EQ(loss.steps.size(), 12u);  // every 5 steps of 60
  for (size_t i = 0; i < loss.steps.size(); ++i) {
    const auto it = scalars.find({static_cast<int64_t>(loss.steps[i]), "loss"});
    ASSERT_NE(it, scalars.end()) << "step " << loss.steps[i];
    EXPECT_EQ(it->second, static_cast<float>(loss.values[i]));  // CSV keeps 9 digits: exact
  }
  for (const char* tag : {"top1", "lr", "key_momentum", "images_per_sec", "data_wait_share"}) {
    EXPECT_EQ(scalars.count({60, tag}), 1u) << tag;
  }
  for (int epoch = 1; epoch <= 3; ++epoch) {
    EXPECT_FLOAT_EQ(scalars.at({20 * epoch, "knn_top1"}), SyntheticKnn(run, epoch));
  }
  EXPECT_FLOAT_EQ(scalars.at({60, "knn_random_init_top1"}), 40);

  const std::string report = ReadText(run.run_dir + "/report.html");
  EXPECT_THAT(report, StartsWith("<!DOCTYPE html>"));
  EXPECT_FALSE(fs::exists(run.run_dir + "/report.html.tmp"));
  // The plain-text summary is in the first lines.
  std::istringstream lines(report);
  std::string head, line;
  for (int i = 0; i < 16 && std::getline(lines, line); ++i) head += line + "\n";
  EXPECT_THAT(head, HasSubstr("status         finished"));
  EXPECT_THAT(head, HasSubstr("steps          60 / 60"));
  EXPECT_THAT(head, HasSubstr("verdict        learning  (loss falling"));
  EXPECT_THAT(head, HasSubstr("best kNN       70.00 % (step 60)"));
  EXPECT_THAT(head, HasSubstr("random init    40.00 %"));
}

TEST(ObserversTest, LossScaleAndSkippedStepsAreLoggedOnlyWhenScaling) {
  RunInfo info;
  info.run_dir = NewDir("loss_scale");
  TensorBoardObserver observer;
  ASSERT_TRUE(observer.OnRunStart(info).ok());
  StepStats plain;
  plain.global_step = 1;
  plain.log_row = true;
  ASSERT_TRUE(observer.OnStep(plain).ok());
  StepStats scaled = plain;
  scaled.global_step = 2;
  scaled.loss_scale = 32768.0f;
  scaled.skipped_update = true;
  scaled.skipped_steps = 3;
  ASSERT_TRUE(observer.OnStep(scaled).ok());
  ASSERT_TRUE(observer.OnRunEnd(RunEnd{}).ok());
  const auto scalars = AllScalars(info.run_dir);
  EXPECT_EQ(scalars.count({1, "loss_scale"}), 0u);
  EXPECT_EQ(scalars.count({1, "skipped_steps"}), 0u);
  EXPECT_EQ(scalars.at({2, "loss_scale"}), 32768.0f);
  EXPECT_EQ(scalars.at({2, "skipped_steps"}), 3.0f);
}

TEST(ObserversTest, ResumeAfterACrashDuplicatesNoStep) {
  SyntheticRun crashed;
  crashed.run_dir = NewDir("resume");
  crashed.stop_at = 37;  // died at step 37; the last checkpoint was at the end of epoch 1
  crashed.crash = true;
  ASSERT_TRUE(DriveSyntheticRun(crashed).ok());
  EXPECT_EQ(AllScalars(crashed.run_dir).count({35, "loss"}), 1u);  // written past the checkpoint

  SyntheticRun resumed = crashed;
  resumed.stop_at = 0;
  resumed.crash = false;
  resumed.start_step = 20;
  ASSERT_TRUE(DriveSyntheticRun(resumed).ok());
  const auto files = tfevents::ListEventFiles(resumed.run_dir);
  ASSERT_THAT(files, SizeIs(2));  // one per process start
  const auto scalars = AllScalars(resumed.run_dir);  // checks no (step, tag) twice
  std::set<int64_t> loss_steps;
  for (const auto& [key, value] : scalars) {
    if (key.second == "loss") loss_steps.insert(key.first);
  }
  auto csv = ParseMetricsCsv(ReadText(resumed.run_dir + "/metrics.csv"), "metrics.csv");
  ASSERT_TRUE(csv.ok());
  const std::set<int64_t> csv_steps((*csv)["loss"].steps.begin(), (*csv)["loss"].steps.end());
  EXPECT_EQ(loss_steps, csv_steps);
  // The crashed process's file now ends at the checkpoint's step.
  auto first = tfevents::ReadEventFile(files[0]);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->back().step(), 20);
  EXPECT_THAT(ReadText(resumed.run_dir + "/report.html"), HasSubstr("steps          60 / 60"));
}

TEST(ObserversTest, FlatLossIsNotLearning) {
  SyntheticRun run;
  run.run_dir = NewDir("flat");
  run.learning = false;
  ASSERT_TRUE(DriveSyntheticRun(run).ok());
  const std::string report = ReadText(run.run_dir + "/report.html");
  EXPECT_THAT(report, HasSubstr("verdict        not learning  (loss NOT falling"));
  EXPECT_THAT(report, HasSubstr("NOT 1 point above"));
}

TEST(ObserversTest, OnlyRankZeroWrites) {
  RunInfo info;
  info.rank = 1;
  auto observers = CreateRunObservers(info);
  ASSERT_TRUE(observers.ok());
  EXPECT_TRUE(observers->empty());
  info.rank = 0;
  EXPECT_THAT(*CreateRunObservers(info), SizeIs(2));
}

TEST(VerdictTest, FollowsTheRule) {
  RunData d;
  EXPECT_EQ(JudgeRun(d, std::nullopt).word, "too early to tell");
  d.series["loss"] = {{1, 2, 3, 4}, {8, 8, 7, 6}};
  EXPECT_EQ(JudgeRun(d, std::nullopt).word, "learning");  // loss only, no kNN yet
  d.series["knn_top1"] = {{4}, {50.5}};
  EXPECT_EQ(JudgeRun(d, 50.0).word, "not learning");  // only 0.5 points above
  EXPECT_EQ(JudgeRun(d, 49.4).word, "learning");
  d.series["loss"] = {{1, 2, 3, 4}, {8, 8, 8, 7.95}};  // less than 1% lower
  EXPECT_EQ(JudgeRun(d, 40.0).word, "not learning");
}

}  // namespace
}  // namespace observe
}  // namespace moco
