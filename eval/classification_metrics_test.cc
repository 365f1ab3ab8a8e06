#include "eval/classification_metrics.h"

#include "gtest/gtest.h"

namespace moco {
namespace eval {
namespace {

TEST(ClassRankTest, CountsHigherScoresAndEqualScoresOfLowerClasses) {
  //            class:  0    1    2    3
  const float s[] = {0.5f, 2.0f, 0.5f, 1.0f};
  EXPECT_EQ(ClassRank(s, 4, 1), 0);  // highest
  EXPECT_EQ(ClassRank(s, 4, 3), 1);  // below class 1 only
  EXPECT_EQ(ClassRank(s, 4, 0), 2);  // below 1 and 3; ties with 2 but 0 < 2 ranks first
  EXPECT_EQ(ClassRank(s, 4, 2), 3);  // tie with class 0, which has the lower index
}

TEST(TopKAccuracyTest, HandComputedTop1AndTop5) {
  // 3 samples over 6 classes.
  // row 0: label 2 has the top score                -> top-1 hit, top-5 hit
  // row 1: label 0 is 5th (scores 6,5,4,3 above it)  -> top-1 miss, top-5 hit
  // row 2: label 5 is last (rank 5)                  -> top-1 miss, top-5 miss
  HostArray scores({3, 6}, {0, 1, 9, 2, 3, 4,   //
                            2, 6, 5, 4, 3, 1,   //
                            5, 4, 3, 2, 1, 0});
  auto m = TopKAccuracy(scores, {2, 0, 5});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->count, 3);
  EXPECT_DOUBLE_EQ(m->top1, 1.0 / 3);
  EXPECT_DOUBLE_EQ(m->top5, 2.0 / 3);
}

TEST(TopKAccuracyTest, FewerThanFiveClassesMakesTop5Certain) {
  HostArray scores({2, 3}, {1, 2, 3, 3, 2, 1});
  auto m = TopKAccuracy(scores, {0, 2});  // both labels ranked last
  ASSERT_TRUE(m.ok());
  EXPECT_DOUBLE_EQ(m->top1, 0.0);
  EXPECT_DOUBLE_EQ(m->top5, 1.0);
}

TEST(TopKAccuracyTest, EmptyGivesZeroCount) {
  MetricsAccumulator acc(10);
  const ClassificationMetrics m = acc.Result();
  EXPECT_EQ(m.count, 0);
  EXPECT_EQ(m.top1, 0.0);
}

TEST(TopKAccuracyTest, MergeAddsCounts) {
  MetricsAccumulator a(10), b(10);
  a.AddRank(0);
  b.AddRank(3);
  b.AddRank(7);
  a.Merge(b);
  const ClassificationMetrics m = a.Result();
  EXPECT_EQ(m.count, 3);
  EXPECT_DOUBLE_EQ(m.top1, 1.0 / 3);
  EXPECT_DOUBLE_EQ(m.top5, 2.0 / 3);
}

TEST(TopKAccuracyTest, ErrorsNameTheArgument) {
  HostArray scores({2, 3}, {1, 2, 3, 4, 5, 6});
  auto wrong_count = TopKAccuracy(scores, {0});
  EXPECT_FALSE(wrong_count.ok());
  EXPECT_NE(wrong_count.status().message().find("labels has 1 entries"), std::string::npos);
  auto out_of_range = TopKAccuracy(scores, {0, 3});
  EXPECT_FALSE(out_of_range.ok());
  EXPECT_NE(out_of_range.status().message().find("labels[1] (3)"), std::string::npos);
  auto not_2d = TopKAccuracy(HostArray({6}, {1, 2, 3, 4, 5, 6}), {0});
  EXPECT_FALSE(not_2d.ok());
  EXPECT_NE(not_2d.status().message().find("scores must be 2-D"), std::string::npos);
}

}  // namespace
}  // namespace eval
}  // namespace moco
