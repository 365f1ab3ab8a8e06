#include "moco/run/metrics_log.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moco {
namespace {

using ::testing::HasSubstr;

std::string NewDir(const std::string& name) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
  const std::string cmd = "rm -rf '" + dir + "' && mkdir -p '" + dir + "'";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  return dir;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

MetricsRow Row(int64_t step, int64_t epoch, double loss) {
  MetricsRow r;
  r.step = step;
  r.epoch = epoch;
  r.loss = loss;
  r.lr = 0.5;
  r.images_per_sec = 100;
  return r;
}

const std::string kHeader =
    "step,epoch,loss,top1,lr,key_momentum,images_per_sec,data_wait_share,knn_top1,"
    "probe_train_top1,probe_test_top1\n";
const std::string kWave1Header = "step,epoch,loss,lr,images_per_sec,knn_top1\n";

TEST(MetricsLogTest, FormatsRows) {
  MetricsRow r;
  r.step = 50;
  r.epoch = 0;
  r.loss = 2.5;
  r.top1 = 0.25;
  r.lr = 0.03;
  r.key_momentum = 0.99;
  r.images_per_sec = 412.46;
  r.data_wait_share = 0.03125;
  EXPECT_EQ(FormatMetricsRow(r), "50,0,2.5,0.25,0.03,0.99,412.5,0.031,,,");
  r.knn_top1 = 71.25;
  EXPECT_EQ(FormatMetricsRow(r), "50,0,2.5,0.25,0.03,0.99,412.5,0.031,71.25,,");
  r.probe_train_top1 = 50;
  r.probe_test_top1 = 45.5;
  EXPECT_EQ(FormatMetricsRow(r), "50,0,2.5,0.25,0.03,0.99,412.5,0.031,71.25,50,45.5");
  r.loss = std::nan("");
  EXPECT_THAT(FormatMetricsRow(r), HasSubstr(",nan,"));
  EXPECT_EQ(MetricsPath("runs/x"), "runs/x/metrics.csv");
}

TEST(MetricsLogTest, FloatLossAndLrRoundTripExactly) {
  for (float v : {0.1f, 8.31234074f, 1.0f / 3.0f, 0.0299999993f, 1.17549435e-38f, 6.02e23f}) {
    MetricsRow r;
    r.loss = v;
    r.top1 = v;
    r.lr = v;
    r.key_momentum = v;
    const std::string line = FormatMetricsRow(r);
    const std::vector<std::string> cells = absl::StrSplit(line, ',');
    ASSERT_EQ(cells.size(), 11u) << line;
    for (int column : {2, 3, 4, 5}) {  // loss, top1, lr, key_momentum
      const float parsed = std::strtof(cells[column].c_str(), nullptr);
      EXPECT_EQ(std::memcmp(&parsed, &v, sizeof(float)), 0) << line << " column " << column;
    }
  }
}

TEST(MetricsLogTest, NewRunWritesHeaderAndFlushesEachRow) {
  const std::string path = MetricsPath(NewDir("new"));
  absl::StatusOr<MetricsLog> log = MetricsLog::Open(path, std::nullopt);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(ReadText(path), kHeader);
  ASSERT_TRUE(log->Append(Row(10, 0, 7.0)).ok());
  // Visible to another reader before the log is closed: the row was flushed.
  EXPECT_EQ(ReadText(path), kHeader + "10,0,7,0,0.5,0,100.0,0.000,,,\n");
  MetricsRow r = Row(20, 1, 6.5);
  r.knn_top1 = 40.5;
  ASSERT_TRUE(log->Append(r).ok());
  EXPECT_EQ(ReadText(path), kHeader + "10,0,7,0,0.5,0,100.0,0.000,,,\n20,1,6.5,0,0.5,0,100.0,0.000,40.5,,\n");
}

TEST(MetricsLogTest, NewRunTruncatesAnExistingFile) {
  const std::string path = MetricsPath(NewDir("truncate"));
  WriteText(path, kHeader + "10,0,7,0,0.5,0,100.0,0.000,,,\n");
  absl::StatusOr<MetricsLog> log = MetricsLog::Open(path, std::nullopt);
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(ReadText(path), kHeader);
}

TEST(MetricsLogTest, ResumeDropsRowsAfterTheResumeStep) {
  const std::string path = MetricsPath(NewDir("resume"));
  {
    absl::StatusOr<MetricsLog> log = MetricsLog::Open(path, std::nullopt);
    ASSERT_TRUE(log.ok());
    for (int step = 50; step <= 300; step += 50) {
      ASSERT_TRUE(log->Append(Row(step, step / 100, 10.0 - step / 100.0)).ok());
    }
  }
  absl::StatusOr<MetricsLog> log = MetricsLog::Open(path, 200);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(ReadText(path), kHeader +
                                "50,0,9.5,0,0.5,0,100.0,0.000,,,\n"
                                "100,1,9,0,0.5,0,100.0,0.000,,,\n"
                                "150,1,8.5,0,0.5,0,100.0,0.000,,,\n"
                                "200,2,8,0,0.5,0,100.0,0.000,,,\n");
  ASSERT_TRUE(log->Append(Row(250, 2, 1.25)).ok());
  EXPECT_THAT(ReadText(path), ::testing::EndsWith("200,2,8,0,0.5,0,100.0,0.000,,,\n250,2,1.25,0,0.5,0,100.0,0.000,,,\n"));
}

TEST(MetricsLogTest, ResumeUpgradesAWave1FileKeepingItsValues) {
  const std::string path = MetricsPath(NewDir("wave1"));
  WriteText(path, kWave1Header + "10,0,7,0.5,100.0,\n20,0,6.5,0.5,101.0,55.5\n30,0,6,0.5,99.0,\n");
  absl::StatusOr<MetricsLog> log = MetricsLog::Open(path, 20);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(ReadText(path), kHeader + "10,0,7,,0.5,,100.0,,,,\n20,0,6.5,,0.5,,101.0,,55.5,,\n");
}

TEST(MetricsLogTest, ResumeDropsALineCutShortByACrash) {
  const std::string path = MetricsPath(NewDir("partial"));
  WriteText(path, kHeader + "10,0,7,0,0.5,0,100.0,0.000,,,\n20,0,6.5,0.");
  absl::StatusOr<MetricsLog> log = MetricsLog::Open(path, 100);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(ReadText(path), kHeader + "10,0,7,0,0.5,0,100.0,0.000,,,\n");
}

TEST(MetricsLogTest, ResumeAtStepZeroKeepsOnlyTheHeader) {
  const std::string path = MetricsPath(NewDir("zero"));
  WriteText(path, kHeader + "10,0,7,0,0.5,0,100.0,0.000,,,\n");
  ASSERT_TRUE(MetricsLog::Open(path, 0).ok());
  EXPECT_EQ(ReadText(path), kHeader);
}

TEST(MetricsLogTest, ResumeWithoutAFileStartsOne) {
  const std::string path = MetricsPath(NewDir("nofile"));
  absl::StatusOr<MetricsLog> log = MetricsLog::Open(path, 500);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(ReadText(path), kHeader);
}

TEST(MetricsLogTest, ResumeRefusesAForeignFileAndLeavesIt) {
  const std::string path = MetricsPath(NewDir("foreign"));
  WriteText(path, "a,b,c\n1,2,3\n");
  absl::StatusOr<MetricsLog> log = MetricsLog::Open(path, 5);
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(log.status().message()), HasSubstr(path));
  EXPECT_THAT(std::string(log.status().message()), HasSubstr("header"));
  EXPECT_EQ(ReadText(path), "a,b,c\n1,2,3\n");
}

TEST(MetricsLogTest, ResumeNamesTheBadLine) {
  const std::string path = MetricsPath(NewDir("badline"));
  WriteText(path, kHeader + "10,0,7,0,0.5,0,100.0,0.000,,,\nxx,0,7,0.5,100.0,\n");
  absl::StatusOr<MetricsLog> log = MetricsLog::Open(path, 5);
  ASSERT_FALSE(log.ok());
  EXPECT_THAT(std::string(log.status().message()), HasSubstr(path + ":3: not a metrics row"));
}

TEST(MetricsLogTest, MissingFolderIsAnErrorNamingTheFile) {
  const std::string path = NewDir("nodir") + "/sub/metrics.csv";
  absl::StatusOr<MetricsLog> log = MetricsLog::Open(path, std::nullopt);
  ASSERT_FALSE(log.ok());
  EXPECT_THAT(std::string(log.status().message()), HasSubstr(path));
}

}  // namespace
}  // namespace moco
