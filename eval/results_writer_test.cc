#include "eval/results_writer.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "gtest/gtest.h"
#include "gmock/gmock.h"
#include "moco/config/config_io.h"
#include "moco/run/small_disk.h"
#include "moco/observe/events/event_file.h"

namespace moco {
namespace eval {
namespace {

EvalResults Sample() {
  EvalResults r;
  r.set_tool("knn");
  r.set_checkpoint("runs/x/checkpoint.ckpt");
  r.set_checkpoint_epoch(5);
  r.mutable_eval_config()->mutable_knn()->set_k(200);
  auto* a = r.add_results();
  a->set_encoder("LEARNED");
  a->set_top1(0.8125);
  a->set_top5(0.995);
  a->set_feature_dim(128);
  a->set_train_images(60000);
  a->set_test_images(10000);
  a->set_seconds(12.5);
  auto* b = r.add_results();
  b->set_encoder("RAW_PIXELS");
  b->set_top1(0.5);
  b->set_top5(0.75);
  return r;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(ResultsWriterTest, WritesAParsableTextProtoAndCreatesTheFolder) {
  const std::string dir = ::testing::TempDir() + "/results_writer/new/folder";
  auto path = WriteEvalResults(dir, Sample());
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(*path, dir + "/knn_results.pbtxt");
  EvalResults back;
  ASSERT_TRUE(ParseTextProtoFile(*path, &back).ok());
  EXPECT_EQ(back.results_size(), 2);
  EXPECT_EQ(back.results(0).top1(), 0.8125);
  EXPECT_EQ(back.eval_config().knn().k(), 200);
  EXPECT_FALSE(std::filesystem::exists(*path + ".tmp"));
  // A second write replaces the results file.
  EvalResults again = Sample();
  again.mutable_results(0)->set_top1(0.25);
  ASSERT_TRUE(WriteEvalResults(dir, again).ok());
  ASSERT_TRUE(ParseTextProtoFile(*path, &back).ok());
  EXPECT_EQ(back.results(0).top1(), 0.25);
}

TEST(ResultsWriterTest, NeverOverwritesACheckpoint) {
  const std::string dir = ::testing::TempDir() + "/results_writer/ckpt";
  std::filesystem::create_directories(dir);
  const std::string target = ResultsPath(dir, "knn");
  const std::string bytes = std::string("MOCOCKPT") + std::string(20, '\x01');
  std::ofstream(target, std::ios::binary) << bytes;
  auto r = WriteEvalResults(dir, Sample());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find(target), std::string::npos) << r.status();
  EXPECT_EQ(ReadAll(target), bytes);
}

TEST(ResultsWriterTest, UnwritableFolderIsAnErrorNamingIt) {
  const std::string file = ::testing::TempDir() + "/results_writer_plain_file";
  std::ofstream(file) << "x";
  auto r = WriteEvalResults(file + "/sub", Sample());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(file), std::string::npos) << r.status();
}

TEST(ResultsWriterTest, TableShowsEncodersSideBySide) {
  const std::string table = FormatResultsTable(Sample());
  EXPECT_NE(table.find("Weighted kNN (k = 200, T = 0.1) of runs/x/checkpoint.ckpt (epoch 5)"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("LEARNED        81.25%   99.50%    128    60000    10000     12.5"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("RAW_PIXELS     50.00%   75.00%"), std::string::npos) << table;
}

// Issue 18 item 7: an unusable results folder is found before the evaluation.
TEST(ResultsWriterTest, UnwritableResultsDirIsFoundUpFront) {
  const std::string base = std::string(std::getenv("TEST_TMPDIR")) + "/unwritable";
  std::filesystem::create_directories(base);
  { std::ofstream(base + "/file") << "x"; }
  absl::Status s = CheckResultsDirWritable(base + "/file/results");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr(base + "/file/results"));
  EXPECT_TRUE(CheckResultsDirWritable(base + "/new/results").ok());
  EXPECT_TRUE(std::filesystem::is_directory(base + "/new/results"));
  EXPECT_TRUE(std::filesystem::is_empty(base + "/new/results"));  // probe removed
}

// Issue 18 items 7 and deliver 4: a full disk fails the write with the reason, keeps the
// previous results file, and the table is printed anyway.
TEST(ResultsWriterTest, DiskFullKeepsThePreviousFileAndPrintsTheTable) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/small_disk_results";
  SmallDisk disk(dir, 8192);
  EvalResults small = Sample();
  ASSERT_TRUE(WriteEvalResults(dir, small).ok());
  const std::string before = ReadAll(ResultsPath(dir, "knn"));
  EvalResults big = Sample();
  big.mutable_results(0)->set_encoder(std::string(64 * 1024, 'L'));
  disk.Fill();
  ::testing::internal::CaptureStdout();
  absl::StatusOr<std::string> path = WriteEvalResultsOrPrint(dir, big);
  const std::string printed = ::testing::internal::GetCapturedStdout();
  ASSERT_FALSE(path.ok());
  EXPECT_THAT(std::string(path.status().message()), ::testing::HasSubstr(disk.reason()));
  EXPECT_THAT(std::string(path.status().message()), ::testing::HasSubstr(dir));
  EXPECT_THAT(printed, ::testing::HasSubstr("RAW_PIXELS"));
  EXPECT_EQ(ReadAll(ResultsPath(dir, "knn")), before);
  std::cerr << "disk full via " << (disk.mounted() ? "tmpfs" : "RLIMIT_FSIZE") << "\n";
}

TEST(ResultsWriterTest, AppendsResultsToAnEvalEventFile) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/events";
  EvalResults r = Sample();
  r.set_checkpoint_global_step(2345);
  ASSERT_TRUE(AppendEvalResultsToEvents(dir, r).ok());
  const auto files = tfevents::ListEventFiles(dir);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].substr(files[0].size() - 5), ".eval");
  auto events = tfevents::ReadEventFile(files[0]);
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 2u);
  const auto& e = (*events)[1];
  EXPECT_EQ(e.step(), 2345);
  ASSERT_EQ(e.summary().value_size(), 4);
  EXPECT_EQ(e.summary().value(0).tag(), "eval/knn/top1/LEARNED");
  EXPECT_FLOAT_EQ(e.summary().value(0).simple_value(), 81.25f);
  EXPECT_EQ(e.summary().value(3).tag(), "eval/knn/top5/RAW_PIXELS");
  EXPECT_FLOAT_EQ(e.summary().value(3).simple_value(), 75.0f);
}

}  // namespace
}  // namespace eval
}  // namespace moco
