#include "eval/linear_classifier.h"

#include <cmath>
#include <random>

#include "eval/classification_metrics.h"
#include "gtest/gtest.h"

namespace moco {
namespace eval {
namespace {

TEST(LearningRateTest, MultiStepProtocolBoundaries) {
  SgdOptions o;  // lr 30, milestones 60, 80, gamma 0.1
  EXPECT_DOUBLE_EQ(LearningRateAt(o, 0), 30.0);
  EXPECT_DOUBLE_EQ(LearningRateAt(o, 59), 30.0);
  EXPECT_NEAR(LearningRateAt(o, 60), 3.0, 1e-12);
  EXPECT_NEAR(LearningRateAt(o, 79), 3.0, 1e-12);
  EXPECT_NEAR(LearningRateAt(o, 80), 0.3, 1e-12);
  EXPECT_NEAR(LearningRateAt(o, 99), 0.3, 1e-12);
}

TEST(LearningRateTest, CosineBoundaries) {
  SgdOptions o;
  o.schedule = SgdOptions::Schedule::kCosine;
  o.lr = 2.0;
  o.epochs = 10;
  EXPECT_DOUBLE_EQ(LearningRateAt(o, 0), 2.0);
  EXPECT_NEAR(LearningRateAt(o, 5), 1.0, 1e-12);  // 0.5 * (1 + cos(pi / 2))
  // epoch 9: 0.5 * (1 + cos(0.9 pi)) * 2 = 1 + cos(162 deg) = 1 - 0.9510565 = 0.0489435
  EXPECT_NEAR(LearningRateAt(o, 9), 0.0489435, 1e-6);
}

TEST(LinearClassifierTest, InitIsNormalStd001BiasZeroAndSeeded) {
  auto a = LinearClassifier::Create(200, 100, 5);
  ASSERT_TRUE(a.ok());
  const NamedArrays s = a->ExportState();
  const std::vector<float>& w = s.at("weight").data();
  double mean = 0, sq = 0;
  for (float x : w) {
    mean += x;
    sq += static_cast<double>(x) * x;
  }
  mean /= w.size();
  const double std = std::sqrt(sq / w.size() - mean * mean);
  // 20000 samples: the sample std of N(0, 0.01^2) is within 2% with overwhelming probability.
  EXPECT_NEAR(std, 0.01, 0.0002);
  EXPECT_NEAR(mean, 0.0, 0.0003);
  for (float b : s.at("bias").data()) EXPECT_EQ(b, 0.0f);
  auto same = LinearClassifier::Create(200, 100, 5);
  auto other = LinearClassifier::Create(200, 100, 6);
  EXPECT_EQ(same->ExportState().at("weight").data(), w);
  EXPECT_NE(other->ExportState().at("weight").data(), w);
}

// Independent reference: loss computed in double straight from the definition.
double ReferenceLoss(const NamedArrays& state, const HostArray& x, const std::vector<int64_t>& y) {
  const auto& w = state.at("weight");
  const auto& b = state.at("bias");
  const int64_t c = w.shape()[0], d = w.shape()[1], m = x.shape()[0];
  double total = 0;
  for (int64_t i = 0; i < m; ++i) {
    std::vector<double> z(c);
    for (int64_t k = 0; k < c; ++k) {
      z[k] = b.data()[k];
      for (int64_t e = 0; e < d; ++e) z[k] += double{w.data()[k * d + e]} * x.data()[i * d + e];
    }
    double sum = 0;
    for (double v : z) sum += std::exp(v);
    total += std::log(sum) - z[y[i]];
  }
  return total / m;
}

TEST(LinearClassifierTest, GradientsMatchFiniteDifferences) {
  const int64_t d = 5;
  const int c = 4;
  auto clf = LinearClassifier::Create(d, c, 3);
  ASSERT_TRUE(clf.ok());
  // Larger weights than the init, so the softmax is not uniform.
  NamedArrays state = clf->ExportState();
  std::mt19937 gen(11);
  std::normal_distribution<float> normal;
  for (float& v : state["weight"].mutable_data()) v = normal(gen);
  for (float& v : state["bias"].mutable_data()) v = normal(gen);
  ASSERT_TRUE(clf->ImportState(state).ok());
  HostArray x({6, d});
  for (float& v : x.mutable_data()) v = normal(gen);
  const std::vector<int64_t> y = {0, 3, 1, 1, 2, 0};
  HostArray gw, gb;
  auto loss = clf->LossAndGradients(x, y, &gw, &gb);
  ASSERT_TRUE(loss.ok()) << loss.status();
  EXPECT_NEAR(*loss, ReferenceLoss(state, x, y), 1e-5);
  const double h = 1e-3;
  for (const char* name : {"weight", "bias"}) {
    const HostArray& g = std::string(name) == "weight" ? gw : gb;
    for (int64_t i = 0; i < state[name].numel(); ++i) {
      NamedArrays plus = state, minus = state;
      plus[name].mutable_data()[i] += h;
      minus[name].mutable_data()[i] -= h;
      const double fd = (ReferenceLoss(plus, x, y) - ReferenceLoss(minus, x, y)) / (2 * h);
      EXPECT_NEAR(g.data()[i], fd, 1e-4) << name << "[" << i << "]";
    }
  }
}

TEST(LinearClassifierTest, SgdStepsMatchHandComputation) {
  // D = 1, C = 2, weight and bias start at 0; x = 1, label 0; lr 1, momentum 0.9, wd 0.1.
  // Step 1: logits (0, 0), p = (0.5, 0.5), grad w = grad b = (-0.5, 0.5); wd * p = 0.
  //   buf = grad; w = b = (0.5, -0.5).
  // Step 2: logits = w + b = (1, -1), p0 = 1 / (1 + e^-2) = 0.8807971;
  //   grad = (p0 - 1, 1 - p0) = (-0.1192029, 0.1192029); + wd * p = (0.05, -0.05)
  //   -> (-0.0692029, 0.0692029); buf = 0.9 * (-0.5, 0.5) + that = (-0.5192029, 0.5192029);
  //   w = b = (0.5, -0.5) - buf = (1.0192029, -1.0192029).
  auto clf = LinearClassifier::Create(1, 2, 0);
  ASSERT_TRUE(clf.ok());
  ASSERT_TRUE(clf->ImportState({{"weight", HostArray({2, 1})}, {"bias", HostArray({2})}}).ok());
  SgdOptions o;
  o.momentum = 0.9;
  o.weight_decay = 0.1;
  HostArray x({1, 1}, {1.0f});
  auto l1 = clf->SgdStep(x, {0}, 1.0, o);
  ASSERT_TRUE(l1.ok());
  EXPECT_NEAR(*l1, std::log(2.0), 1e-6);
  NamedArrays s = clf->ExportState();
  EXPECT_NEAR(s["weight"].data()[0], 0.5, 1e-6);
  EXPECT_NEAR(s["bias"].data()[1], -0.5, 1e-6);
  auto l2 = clf->SgdStep(x, {0}, 1.0, o);
  ASSERT_TRUE(l2.ok());
  EXPECT_NEAR(*l2, std::log(1 + std::exp(-2.0)), 1e-6);
  s = clf->ExportState();
  EXPECT_NEAR(s["weight"].data()[0], 1.0192029, 1e-6);
  EXPECT_NEAR(s["weight"].data()[1], -1.0192029, 1e-6);
  EXPECT_NEAR(s["bias"].data()[0], 1.0192029, 1e-6);
  EXPECT_NEAR(s["bias"].data()[1], -1.0192029, 1e-6);
}

// Gaussian clusters around 4 * e_c in 32 dims (noise std 1): linearly separable up to a
// negligible overlap.
void MakeClusters(int64_t n, int c, int64_t d, uint32_t seed, HostArray* x,
                  std::vector<int64_t>* y) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal;
  *x = HostArray({n, d});
  y->resize(n);
  for (int64_t i = 0; i < n; ++i) {
    (*y)[i] = static_cast<int64_t>(gen() % c);
    for (int64_t e = 0; e < d; ++e) x->mutable_data()[i * d + e] = normal(gen) + (e == (*y)[i] ? 4.0f : 0.0f);
  }
}

TrainOptions SmallRun() {
  TrainOptions t;
  t.sgd.lr = 0.5;
  t.sgd.epochs = 15;
  t.sgd.schedule = SgdOptions::Schedule::kCosine;
  t.batch_size = 64;
  t.seed = 4;
  return t;
}

TEST(LinearClassifierTest, LearnsASeparableSet) {
  HostArray x, tx;
  std::vector<int64_t> y, ty;
  MakeClusters(3000, 10, 32, 1, &x, &y);
  MakeClusters(1000, 10, 32, 2, &tx, &ty);
  auto clf = LinearClassifier::Create(32, 10, 0);
  ASSERT_TRUE(clf.ok());
  int calls = 0;
  TrainOptions t = SmallRun();
  t.on_step = [&calls](const TrainProgress& p) { ++calls; EXPECT_EQ(p.steps_per_epoch, 47); };
  auto losses = TrainOnFeatures(*clf, x, y, t);
  ASSERT_TRUE(losses.ok()) << losses.status();
  EXPECT_EQ(calls, 15 * 47);  // 3000 / 64 -> 46 full batches + one of 56
  EXPECT_LT(losses->back(), losses->front());
  auto scores = clf->Scores(tx);
  ASSERT_TRUE(scores.ok());
  auto m = TopKAccuracy(*scores, ty);
  ASSERT_TRUE(m.ok());
  EXPECT_GT(m->top1, 0.95);
}

TEST(LinearClassifierTest, XorIsNotLearned) {
  // Control: the XOR of two coordinates' signs is not linearly separable; a linear classifier
  // cannot beat chance by much (the best linear rule gets about 50-75%).
  std::mt19937 gen(3);
  std::uniform_real_distribution<float> u(-1, 1);
  auto make = [&](int64_t n, HostArray* x, std::vector<int64_t>* y) {
    *x = HostArray({n, 2});
    y->resize(n);
    for (int64_t i = 0; i < n; ++i) {
      x->mutable_data()[2 * i] = u(gen);
      x->mutable_data()[2 * i + 1] = u(gen);
      (*y)[i] = (x->data()[2 * i] > 0) != (x->data()[2 * i + 1] > 0);
    }
  };
  HostArray x, tx;
  std::vector<int64_t> y, ty;
  make(3000, &x, &y);
  make(1000, &tx, &ty);
  auto clf = LinearClassifier::Create(2, 2, 0);
  ASSERT_TRUE(clf.ok());
  ASSERT_TRUE(TrainOnFeatures(*clf, x, y, SmallRun()).ok());
  auto m = TopKAccuracy(*clf->Scores(tx), ty);
  ASSERT_TRUE(m.ok());
  EXPECT_LT(m->top1, 0.8);
}

TEST(LinearClassifierTest, RandomLabelsAreNotLearnedOnTestData) {
  HostArray x, tx;
  std::vector<int64_t> y, ty;
  MakeClusters(3000, 10, 32, 1, &x, &y);
  MakeClusters(1000, 10, 32, 2, &tx, &ty);
  std::mt19937 gen(9);
  for (auto& label : y) label = gen() % 10;  // labels independent of the features
  auto clf = LinearClassifier::Create(32, 10, 0);
  ASSERT_TRUE(TrainOnFeatures(*clf, x, y, SmallRun()).ok());
  auto m = TopKAccuracy(*clf->Scores(tx), ty);
  ASSERT_TRUE(m.ok());
  EXPECT_LT(m->top1, 0.25);  // chance is 0.1
}

TEST(LinearClassifierTest, TrainingIsDeterministicInTheSeed) {
  HostArray x;
  std::vector<int64_t> y;
  MakeClusters(500, 5, 8, 1, &x, &y);
  auto run = [&](uint64_t seed) {
    auto clf = LinearClassifier::Create(8, 5, 1);
    TrainOptions t = SmallRun();
    t.sgd.epochs = 3;
    t.seed = seed;
    EXPECT_TRUE(TrainOnFeatures(*clf, x, y, t).ok());
    return clf->ExportState().at("weight").data();
  };
  EXPECT_EQ(run(1), run(1));
  EXPECT_NE(run(1), run(2));
}

TEST(LinearClassifierTest, DivergenceIsAnError) {
  HostArray x({2, 1}, {1e30f, -1e30f});
  auto clf = LinearClassifier::Create(1, 2, 0);
  // Start wrong on both samples so the gradient is huge: the first step overflows the weights
  // to infinity and the second step's loss is NaN.
  ASSERT_TRUE(clf->ImportState({{"weight", HostArray({2, 1}, {-1.0f, 1.0f})},
                                {"bias", HostArray({2})}}).ok());
  TrainOptions t = SmallRun();
  t.sgd.lr = 1e30;
  auto r = TrainOnFeatures(*clf, x, {0, 1}, t);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("diverged"), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find("epoch "), std::string::npos) << r.status();
}

TEST(LinearClassifierTest, PermutationIsAPermutationAndSeeded) {
  const auto p = EpochPermutation(1000, 3, 7);
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) EXPECT_EQ(sorted[i], i);
  EXPECT_EQ(p, EpochPermutation(1000, 3, 7));
  EXPECT_NE(p, EpochPermutation(1000, 3, 8));
  EXPECT_NE(p, EpochPermutation(1000, 4, 7));
}

TEST(LinearClassifierTest, ExportImportRoundTripAndErrors) {
  auto a = LinearClassifier::Create(3, 2, 1);
  auto b = LinearClassifier::Create(3, 2, 2);
  ASSERT_TRUE(b->ImportState(a->ExportState()).ok());
  EXPECT_EQ(b->ExportState().at("weight").data(), a->ExportState().at("weight").data());
  HostArray x({1, 3}, {1, 2, 3});
  EXPECT_EQ(a->Scores(x)->data(), b->Scores(x)->data());

  NamedArrays bad = a->ExportState();
  bad["weight"] = HostArray({3, 2});
  absl::Status s = b->ImportState(bad);
  EXPECT_NE(s.message().find("\"weight\" has shape (3, 2), expected (2, 3)"), std::string::npos) << s;
  bad = a->ExportState();
  bad.erase("bias");
  EXPECT_NE(b->ImportState(bad).message().find("lacks \"bias\""), std::string::npos);
  bad = a->ExportState();
  bad["fc.extra"] = HostArray({1});
  EXPECT_NE(b->ImportState(bad).message().find("unexpected entry \"fc.extra\""), std::string::npos);
  EXPECT_NE(a->Scores(HostArray({1, 4})).status().message().find("features has shape (1, 4)"),
            std::string::npos);
  EXPECT_FALSE(LinearClassifier::Create(0, 2, 0).ok());
  EXPECT_FALSE(LinearClassifier::Create(2, 0, 0).ok());
}

// A classifier restored from weights and momentum continues exactly as the original does.
TEST(LinearClassifierTest, RestoredMomentumContinuesTrainingExactly) {
  HostArray x({4, 3}, {1, 0, 2, -1, 3, 1, 0.5f, -2, 1, 2, 2, -1});
  const std::vector<int64_t> y = {0, 1, 1, 0};
  SgdOptions sgd;
  sgd.momentum = 0.9;
  sgd.weight_decay = 1e-3;
  auto a = LinearClassifier::Create(3, 2, 1);
  ASSERT_TRUE(a->SgdStep(x, y, 0.1, sgd).ok());
  ASSERT_TRUE(a->SgdStep(x, y, 0.1, sgd).ok());
  auto b = LinearClassifier::Create(3, 2, 9);
  ASSERT_TRUE(b->ImportState(a->ExportState()).ok());
  ASSERT_TRUE(b->ImportMomentum(a->ExportMomentum()).ok());
  auto c = LinearClassifier::Create(3, 2, 9);  // weights only: momentum restarts
  ASSERT_TRUE(c->ImportState(a->ExportState()).ok());
  for (auto* clf : {&*a, &*b, &*c}) ASSERT_TRUE(clf->SgdStep(x, y, 0.1, sgd).ok());
  EXPECT_EQ(b->ExportState().at("weight").data(), a->ExportState().at("weight").data());
  EXPECT_EQ(b->ExportMomentum().at("bias_momentum").data(),
            a->ExportMomentum().at("bias_momentum").data());
  EXPECT_NE(c->ExportState().at("weight").data(), a->ExportState().at("weight").data());
  NamedArrays bad = a->ExportMomentum();
  bad["weight_momentum"] = HostArray({3, 2});
  EXPECT_NE(b->ImportMomentum(bad).message().find("\"weight_momentum\" has shape (3, 2)"),
            std::string::npos);
}

}  // namespace
}  // namespace eval
}  // namespace moco
