#include "moco/observe/compare.h"

#include <cstdlib>
#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "moco/observe/synthetic_run.h"

namespace moco {
namespace observe {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

TEST(CompareTest, DiffsConfigsFieldByFieldWithDefaults) {
  const auto rows = DiffConfigs({"run { epochs: 3 }", "run { epochs: 5 seed: 0 }"});
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows[0].field, "run.epochs");
  EXPECT_TRUE(rows[0].differs);
  EXPECT_EQ(rows[0].values, std::vector<std::string>({"3", "5"}));
  ASSERT_GT(rows.size(), 1u);
  EXPECT_FALSE(rows[1].differs);  // only one field differs: seed 0 is the default
  bool saw_batch = false;
  for (const auto& r : rows) {
    if (r.field == "run.batch_size") {
      saw_batch = true;
      EXPECT_EQ(r.values, std::vector<std::string>({"256", "256"}));  // the default, shown
    }
  }
  EXPECT_TRUE(saw_batch);
  const auto bad = DiffConfigs({"run { epochs: 3 }", "not a config"});
  EXPECT_EQ(bad[0].values[1], "(unreadable)");
}

TEST(CompareTest, OverlaysBothRuns) {
  std::vector<RunData> runs;
  for (int i = 0; i < 2; ++i) {
    SyntheticRun run;
    run.run_dir = (fs::path(std::getenv("TEST_TMPDIR")) / ("run" + std::to_string(i))).string();
    fs::remove_all(run.run_dir);
    run.epochs = 2 + i;
    run.learning = i == 0;
    ASSERT_TRUE(DriveSyntheticRun(run).ok());
    auto data = LoadRunData(run.run_dir);
    ASSERT_TRUE(data.ok());
    runs.push_back(*data);
  }
  const std::string html = RenderComparison(runs);
  EXPECT_THAT(html, HasSubstr("id=\"chart-loss\""));
  EXPECT_THAT(html, HasSubstr("data-series=\"run 1\""));
  EXPECT_THAT(html, HasSubstr("data-series=\"run 2\""));
  EXPECT_THAT(html, HasSubstr("<tr class=\"differs\"><td>run.epochs</td><td>2</td><td>3</td>"));
  EXPECT_THAT(html, HasSubstr("not learning"));
  EXPECT_THAT(html, HasSubstr(runs[1].run_dir));
}

}  // namespace
}  // namespace observe
}  // namespace moco
