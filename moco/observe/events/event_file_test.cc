#include "moco/observe/events/event_file.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moco {
namespace tfevents {
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

std::vector<int64_t> Steps(const std::vector<Event>& events) {
  std::vector<int64_t> steps;
  for (const Event& e : events) {
    if (e.has_summary()) steps.push_back(e.step());
  }
  return steps;
}

TEST(EventFileTest, WritesVersionThenScalarsAndReadsThemBack) {
  const std::string dir = NewDir("write");
  auto w = EventFileWriter::Create(dir);
  ASSERT_TRUE(w.ok()) << w.status();
  const std::string name = fs::path((*w)->path()).filename().string();
  EXPECT_THAT(name, StartsWith("events.out.tfevents."));
  ASSERT_TRUE((*w)->WriteScalars(50, {{"loss", 8.25f}, {"lr", 0.03f}}, 1700000000.5).ok());
  ASSERT_TRUE((*w)->WriteScalars(100, {{"loss", 7.5f}}).ok());
  ASSERT_TRUE((*w)->Flush().ok());

  auto events = ReadEventFile((*w)->path());
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_THAT(*events, SizeIs(3));
  EXPECT_EQ((*events)[0].file_version(), "brain.Event:2");
  EXPECT_GT((*events)[0].wall_time(), 1.6e9);
  const Event& first = (*events)[1];
  EXPECT_EQ(first.step(), 50);
  EXPECT_EQ(first.wall_time(), 1700000000.5);
  ASSERT_EQ(first.summary().value_size(), 2);
  EXPECT_EQ(first.summary().value(0).tag(), "loss");
  EXPECT_EQ(first.summary().value(0).simple_value(), 8.25f);
  EXPECT_EQ(first.summary().value(1).tag(), "lr");
  EXPECT_EQ(first.summary().value(1).simple_value(), 0.03f);
  EXPECT_EQ((*events)[2].step(), 100);

  // The file name is <prefix><unix seconds>.<host>; a second writer in the same second gets
  // another name, never the same file.
  auto w2 = EventFileWriter::Create(dir);
  ASSERT_TRUE(w2.ok());
  EXPECT_NE((*w2)->path(), (*w)->path());
  EXPECT_THAT(ListEventFiles(dir), SizeIs(2));
}

TEST(EventFileTest, ReadingACorruptedFileNamesIt) {
  const std::string dir = NewDir("corrupt");
  std::string path;
  {
    auto w = EventFileWriter::Create(dir);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->WriteScalars(1, {{"loss", 1}}).ok());
    path = (*w)->path();
  }
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(-6, std::ios::end);
  f.put('\x7f');
  f.close();
  auto events = ReadEventFile(path);
  ASSERT_FALSE(events.ok());
  EXPECT_EQ(events.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(events.status().message(), HasSubstr(path));
  EXPECT_THAT(events.status().message(), HasSubstr("CRC"));
}

TEST(EventFileTest, TrimDropsStepsAfterTheCheckpointAndACrashedTail) {
  const std::string dir = NewDir("trim");
  std::string crashed, before;
  {
    auto a = EventFileWriter::Create(dir);  // an earlier process, all steps <= 20
    ASSERT_TRUE(a.ok());
    ASSERT_TRUE((*a)->WriteScalars(10, {{"loss", 3}}).ok());
    before = (*a)->path();
    auto b = EventFileWriter::Create(dir);  // the crashed one: steps past the checkpoint
    ASSERT_TRUE(b.ok());
    for (int s : {20, 30, 40}) ASSERT_TRUE((*b)->WriteScalars(s, {{"loss", 2}}).ok());
    crashed = (*b)->path();
  }
  // The crash cut its last record short.
  std::ofstream(crashed, std::ios::app | std::ios::binary) << std::string("\x20\0\0\0\0\0", 6);
  ASSERT_TRUE(AppendEvalScalars(dir, 40, {{"eval/knn_top1/LEARNED", 80}}).ok());
  const auto before_bytes = fs::file_size(before);

  auto dropped = TrimEventFilesAfterStep(dir, 20);
  ASSERT_TRUE(dropped.ok()) << dropped.status();
  EXPECT_EQ(*dropped, 2);
  auto events = ReadEventFile(crashed);
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_EQ((*events)[0].file_version(), "brain.Event:2");
  EXPECT_EQ(Steps(*events), std::vector<int64_t>({20}));
  EXPECT_EQ(fs::file_size(crashed), fs::file_size(before));  // one version + one scalar event each
  EXPECT_EQ(fs::file_size(before), before_bytes);            // untouched
  // The eval file keeps its step 40.
  const auto all = ListEventFiles(dir);
  const auto training = ListEventFiles(dir, /*include_eval=*/false);
  ASSERT_THAT(all, SizeIs(3));
  ASSERT_THAT(training, SizeIs(2));
  for (const auto& p : all) {
    if (std::find(training.begin(), training.end(), p) != training.end()) continue;
    auto eval = ReadEventFile(p);
    ASSERT_TRUE(eval.ok());
    EXPECT_EQ(Steps(*eval), std::vector<int64_t>({40}));
    EXPECT_EQ((*eval)[1].summary().value(0).tag(), "eval/knn_top1/LEARNED");
  }
  // Nothing left to trim the second time.
  EXPECT_EQ(*TrimEventFilesAfterStep(dir, 20), 0);
}

}  // namespace
}  // namespace tfevents
}  // namespace moco
