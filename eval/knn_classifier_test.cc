#include "eval/knn_classifier.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "gtest/gtest.h"

namespace moco {
namespace eval {
namespace {

// The hand-made set (D = 2; vectors deliberately not unit length, the classifier normalizes):
//   train 0: ( 3,   0 )  label 0   -> unit (1, 0)
//   train 1: ( 0, 0.5 )  label 1   -> unit (0, 1)
//   train 2: ( 0,  -2 )  label 1   -> unit (0, -1)
//   train 3: (-4,   0 )  label 2   -> unit (-1, 0)
//   test:    ( 2,   0 )  label 0   -> unit (1, 0)
// Cosine similarities of the test point: 1, 0, 0, -1.
HostArray Train() { return HostArray({4, 2}, {3, 0, 0, 0.5f, 0, -2, -4, 0}); }
std::vector<int64_t> TrainLabels() { return {0, 1, 1, 2}; }
HostArray TestPoint() { return HostArray({1, 2}, {2, 0}); }

TEST(WeightedKnnTest, WeightingBeatsMajorityAtLowTemperature) {
  // k = 3 takes train 0, 1, 2 (train 3, sim -1, is 4th). Plain majority would say class 1
  // (2 votes to 1). Weighted with T = 0.1: class 0 gets exp(1/0.1) = e^10 ~ 22026,
  // class 1 gets 2 * exp(0) = 2: class 0 wins.
  KnnOptions options{3, 0.1f, 3};
  auto m = WeightedKnnClassify(Train(), TrainLabels(), TestPoint(), {0}, options);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->count, 1);
  EXPECT_DOUBLE_EQ(m->top1, 1.0);

  // Scores are sum exp((sim - 1) / T): class 0: exp(0) = 1; class 1: 2 * exp(-10);
  // class 2: 0 (not among the 3 neighbours).
  auto scores = WeightedKnnScores(Train(), TrainLabels(), TestPoint(), options);
  ASSERT_TRUE(scores.ok()) << scores.status();
  ASSERT_EQ(scores->shape(), (std::vector<int64_t>{1, 3}));
  EXPECT_NEAR(scores->data()[0], 1.0, 1e-6);
  EXPECT_NEAR(scores->data()[1], 2 * std::exp(-10.0), 1e-9);
  EXPECT_EQ(scores->data()[2], 0.0f);
}

TEST(WeightedKnnTest, HighTemperatureFallsBackToMajority) {
  // Same neighbours, T = 100: class 0 gets exp(1/100) = 1.01005, class 1 gets 2 * exp(0) = 2:
  // class 1 wins, so the test point (label 0) is a top-1 miss (top-5 hit: 3 classes).
  KnnOptions options{3, 100.0f, 3};
  auto m = WeightedKnnClassify(Train(), TrainLabels(), TestPoint(), {0}, options);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_DOUBLE_EQ(m->top1, 0.0);
  EXPECT_DOUBLE_EQ(m->top5, 1.0);
  auto with_label_1 = WeightedKnnClassify(Train(), TrainLabels(), TestPoint(), {1}, options);
  ASSERT_TRUE(with_label_1.ok());
  EXPECT_DOUBLE_EQ(with_label_1->top1, 1.0);
}

TEST(WeightedKnnTest, KLargerThanTrainingSetUsesEveryone) {
  // k = 200 > N = 4: all four vote. T = 0.1, scores exp((sim - 1) / T):
  // class 0: 1; class 1: 2 e^-10; class 2: e^-20.
  KnnOptions options{200, 0.1f, 3};
  auto scores = WeightedKnnScores(Train(), TrainLabels(), TestPoint(), options);
  ASSERT_TRUE(scores.ok()) << scores.status();
  EXPECT_NEAR(scores->data()[0], 1.0, 1e-6);
  EXPECT_NEAR(scores->data()[1], 2 * std::exp(-10.0), 1e-9);
  EXPECT_NEAR(scores->data()[2], std::exp(-20.0), 1e-13);
  EXPECT_GT(scores->data()[2], 0.0f);
  auto m = WeightedKnnClassify(Train(), TrainLabels(), TestPoint(), {2}, options);
  ASSERT_TRUE(m.ok());
  EXPECT_DOUBLE_EQ(m->top1, 0.0);  // class 2 ranks last ...
  EXPECT_DOUBLE_EQ(m->top5, 1.0);  // ... but top-5 of 3 classes always holds
}

TEST(WeightedKnnTest, NeighbourTiesTakeLowerTrainingIndex) {
  // Two identical training points with different labels; the test point equals them.
  // k = 1: the tie at the 1st place goes to the lower training index.
  HostArray train({2, 2}, {0, 1, 0, 1});
  HostArray test({1, 2}, {0, 5});
  KnnOptions options{1, 0.1f, 2};
  auto first_is_0 = WeightedKnnClassify(train, {0, 1}, test, {0}, options);
  ASSERT_TRUE(first_is_0.ok());
  EXPECT_DOUBLE_EQ(first_is_0->top1, 1.0);
  auto first_is_1 = WeightedKnnClassify(train, {1, 0}, test, {1}, options);
  ASSERT_TRUE(first_is_1.ok());
  EXPECT_DOUBLE_EQ(first_is_1->top1, 1.0);
}

TEST(WeightedKnnTest, ClassScoreTiesRankLowerClassFirst) {
  // k = 2: both identical points vote exp(0) = 1, classes 0 and 1 tie; class 0 ranks first.
  HostArray train({2, 2}, {0, 1, 0, 1});
  HostArray test({2, 2}, {0, 5, 0, 1});
  KnnOptions options{2, 0.1f, 2};
  auto scores = WeightedKnnScores(train, {1, 0}, test, options);
  ASSERT_TRUE(scores.ok());
  EXPECT_EQ(scores->data()[0], scores->data()[1]);
  auto m = WeightedKnnClassify(train, {1, 0}, test, {0, 1}, options);
  ASSERT_TRUE(m.ok());
  EXPECT_DOUBLE_EQ(m->top1, 0.5);  // label 0 hit, label 1 miss
  EXPECT_DOUBLE_EQ(m->top5, 1.0);
}

TEST(WeightedKnnTest, Top5CanMissWithSevenClasses) {
  // 6 training points, one per class 0..5, all near the test direction (1, 0); k = 6, so every
  // class 0..5 gets a positive score. A test point labelled 6 (no training point, score 0) then
  // has rank 6: top-1 and top-5 miss. A test point labelled 0 (its neighbour has sim 1, the
  // largest weight) has rank 0. So top-1 = top-5 = 1/2.
  HostArray train({6, 2}, {1, 0, 1, 0.1f, 1, 0.2f, 1, 0.3f, 1, 0.4f, 1, 0.5f});
  HostArray test({2, 2}, {1, 0, 1, 0});
  KnnOptions options{6, 0.1f, 7};
  auto m = WeightedKnnClassify(train, {0, 1, 2, 3, 4, 5}, test, {6, 0}, options);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_DOUBLE_EQ(m->top1, 0.5);
  EXPECT_DOUBLE_EQ(m->top5, 0.5);
}

TEST(WeightedKnnTest, EmptyTestSet) {
  auto m = WeightedKnnClassify(Train(), TrainLabels(), HostArray({0, 2}), {}, {5, 0.1f, 3});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->count, 0);
}

TEST(WeightedKnnTest, ErrorsNameTheArgument) {
  auto expect_error = [](const absl::StatusOr<ClassificationMetrics>& r, const std::string& what) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(what), std::string::npos) << r.status();
  };
  const KnnOptions ok{3, 0.1f, 3};
  expect_error(WeightedKnnClassify(Train(), TrainLabels(), HostArray({1, 3}), {0}, ok),
               "test_features has dimension 3, train_features has 2");
  expect_error(WeightedKnnClassify(Train(), {0, 1}, TestPoint(), {0}, ok), "train_labels has 2");
  expect_error(WeightedKnnClassify(Train(), TrainLabels(), TestPoint(), {0, 1}, ok), "test_labels has 2");
  expect_error(WeightedKnnClassify(Train(), {0, 1, 1, 3}, TestPoint(), {0}, ok), "train_labels[3] (3)");
  expect_error(WeightedKnnClassify(Train(), TrainLabels(), TestPoint(), {-1}, ok), "test_labels[0] (-1)");
  expect_error(WeightedKnnClassify(Train(), TrainLabels(), TestPoint(), {0}, {0, 0.1f, 3}), "options.k");
  expect_error(WeightedKnnClassify(Train(), TrainLabels(), TestPoint(), {0}, {3, 0.0f, 3}),
               "options.temperature");
  expect_error(WeightedKnnClassify(Train(), TrainLabels(), TestPoint(), {0}, {3, 0.1f, 0}),
               "options.num_classes");
  expect_error(WeightedKnnClassify(HostArray({8}), TrainLabels(), TestPoint(), {0}, ok),
               "train_features must be 2-D");
  expect_error(WeightedKnnClassify(HostArray({0, 2}), {}, TestPoint(), {0}, ok), "no rows");
  HostArray nan_test = TestPoint();
  nan_test.mutable_data()[1] = std::nanf("");
  expect_error(WeightedKnnClassify(Train(), TrainLabels(), nan_test, {0}, ok),
               "test_features has a non-finite value at row 0, column 1");
}

// An independent, slow reference: double-precision cosine, full sort per test row.
std::vector<std::vector<double>> ReferenceScores(const HostArray& train,
                                                 const std::vector<int64_t>& labels,
                                                 const HostArray& test, int k, double t, int c) {
  const int64_t n = train.shape()[0], m = test.shape()[0], d = train.shape()[1];
  auto unit = [d](const HostArray& a, int64_t i) {
    std::vector<double> v(a.data().begin() + i * d, a.data().begin() + (i + 1) * d);
    double norm = 0;
    for (double x : v) norm += x * x;
    norm = std::sqrt(norm);
    for (double& x : v) x /= norm;
    return v;
  };
  std::vector<std::vector<double>> train_unit;
  for (int64_t j = 0; j < n; ++j) train_unit.push_back(unit(train, j));
  std::vector<std::vector<double>> out;
  for (int64_t i = 0; i < m; ++i) {
    const std::vector<double> q = unit(test, i);
    std::vector<std::pair<double, int64_t>> sims;
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t e = 0; e < d; ++e) s += q[e] * train_unit[j][e];
      sims.push_back({-s, j});
    }
    std::sort(sims.begin(), sims.end());
    std::vector<double> votes(c, 0.0);
    for (int r = 0; r < k; ++r) votes[labels[sims[r].second]] += std::exp((-sims[r].first - 1) / t);
    out.push_back(votes);
  }
  return out;
}

TEST(WeightedKnnTest, MatchesSlowReferenceAcrossChunks) {
  // N = 20000 makes the GEMM chunk 838 test rows, so M = 2000 spans 3 chunks.
  const int64_t n = 20000, m = 2000, d = 8;
  const int c = 5;
  std::mt19937 gen(7);
  std::normal_distribution<float> normal;
  HostArray train({n, d}), test({m, d});
  std::vector<int64_t> train_labels(n), test_labels(m);
  for (int64_t i = 0; i < n; ++i) {
    train_labels[i] = i % c;
    for (int64_t e = 0; e < d; ++e) train.mutable_data()[i * d + e] = normal(gen) + (e == i % c ? 1.5f : 0);
  }
  for (int64_t i = 0; i < m; ++i) {
    test_labels[i] = (i * 3) % c;
    for (int64_t e = 0; e < d; ++e) test.mutable_data()[i * d + e] = normal(gen) + (e == (i * 3) % c ? 1.5f : 0);
  }
  const KnnOptions options{50, 0.07f, c};
  auto scores = WeightedKnnScores(train, train_labels, test, options);
  ASSERT_TRUE(scores.ok()) << scores.status();
  // Check a sample of rows in every chunk against the reference.
  HostArray sample({60, d});
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < 60; ++i) rows.push_back((i * 997) % m);
  for (int64_t i = 0; i < 60; ++i)
    std::copy_n(test.data().begin() + rows[i] * d, d, sample.mutable_data().begin() + i * d);
  const auto ref = ReferenceScores(train, train_labels, sample, 50, 0.07, c);
  for (int64_t i = 0; i < 60; ++i) {
    for (int j = 0; j < c; ++j) {
      EXPECT_NEAR(scores->data()[rows[i] * c + j], ref[i][j], 1e-4 * (1 + ref[i][j]))
          << "row " << rows[i] << " class " << j;
    }
  }
  // Learned-looking clusters: clearly above chance (0.2), and top-5 of 5 classes is 1.
  auto m_result = WeightedKnnClassify(train, train_labels, test, test_labels, options);
  ASSERT_TRUE(m_result.ok());
  EXPECT_GT(m_result->top1, 0.5);
  EXPECT_DOUBLE_EQ(m_result->top5, 1.0);
  EXPECT_EQ(m_result->count, m);
}

}  // namespace
}  // namespace eval
}  // namespace moco
