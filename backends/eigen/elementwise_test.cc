#include "backends/eigen/elementwise.h"

#include <cmath>
#include <vector>

#include "backends/eigen/grad_check.h"
#include "gtest/gtest.h"

namespace moco {
namespace eigen_backend {
namespace {

TEST(ReluTest, ForwardClampsAndBackwardMatchesFiniteDifferences) {
  Blob<double> x = RandomBlob({3, 2, 5, 3}, 81);
  Blob<double> y = x;
  ReluInPlace(&y);
  for (int64_t i = 0; i < x.numel(); ++i) EXPECT_EQ(y.data[i], x.data[i] > 0 ? x.data[i] : 0.0);
  Blob<double> r = RandomBlob(x.shape, 82);
  auto loss = [&] {
    Blob<double> o = x;
    ReluInPlace(&o);
    return Dot(o.data, r.data);
  };
  Blob<double> dy = r;
  ReluBackwardInPlace(y, &dy);
  EXPECT_TRUE(AllClose(dy.data, NumericGradient(loss, &x.data), 1e-8, 1e-6));
}

TEST(ReluTest, GradientAtZeroIsZero) {
  Blob<double> y({2});
  Blob<double> dy({2});
  dy.data = {1.0, 1.0};
  y.data = {0.0, 2.0};
  ReluBackwardInPlace(y, &dy);
  EXPECT_EQ(dy.data, (std::vector<double>{0.0, 1.0}));
}

TEST(GeluTest, ForwardIsXTimesTheNormalCdfAndBackwardMatchesFiniteDifferences) {
  Blob<double> x = RandomBlob({3, 4, 5}, 87, -3.0, 3.0);
  Blob<double> y;
  GeluForward(x, &y);
  EXPECT_EQ(y.shape, x.shape);
  // Closed-form points: GELU(0) = 0, GELU(x) - GELU(-x) = x (Phi(x) + Phi(-x) = 1).
  Blob<double> pm({2});
  pm.data = {1.7, -1.7};
  Blob<double> g;
  GeluForward(pm, &g);
  EXPECT_NEAR(g.data[0] - g.data[1], 1.7, 1e-15);
  EXPECT_NEAR(g.data[0], 1.7 * 0.5 * std::erfc(-1.7 / std::sqrt(2.0)), 1e-15);
  Blob<double> r = RandomBlob(x.shape, 88);
  auto loss = [&] {
    Blob<double> o;
    GeluForward(x, &o);
    return Dot(o.data, r.data);
  };
  Blob<double> dx;
  GeluBackward(x, r, &dx);
  EXPECT_TRUE(AllClose(dx.data, NumericGradient(loss, &x.data), 1e-8, 1e-6));
  Blob<double> in_place = r;  // dx may alias dy
  GeluBackward(x, in_place, &in_place);
  EXPECT_EQ(in_place.data, dx.data);
}

TEST(AddTest, AddsElementwise) {
  Blob<double> a = RandomBlob({2, 3}, 83), b = RandomBlob({2, 3}, 84);
  Blob<double> s = b;
  AddInPlace(a, &s);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(s.data[i], a.data[i] + b.data[i]);
}

TEST(L2NormalizeTest, RowsHaveUnitNormAndBackwardMatchesFiniteDifferences) {
  Blob<double> x = RandomBlob({4, 6}, 85);
  Blob<double> y;
  std::vector<double> norms;
  L2NormalizeRowsForward(x, &y, &norms);
  for (int i = 0; i < 4; ++i) {
    double sq = 0, xs = 0;
    for (int j = 0; j < 6; ++j) {
      sq += y.data[i * 6 + j] * y.data[i * 6 + j];
      xs += x.data[i * 6 + j] * x.data[i * 6 + j];
    }
    EXPECT_NEAR(sq, 1.0, 1e-14);
    EXPECT_NEAR(norms[i], std::sqrt(xs), 1e-14);
    EXPECT_NEAR(y.data[i * 6] * norms[i], x.data[i * 6], 1e-14);  // same direction
  }
  Blob<double> r = RandomBlob(x.shape, 86);
  auto loss = [&] {
    Blob<double> o;
    L2NormalizeRowsForward(x, &o, nullptr);
    return Dot(o.data, r.data);
  };
  Blob<double> dx;
  L2NormalizeRowsBackward(y, norms, r, &dx);
  EXPECT_TRUE(AllClose(dx.data, NumericGradient(loss, &x.data), 1e-8, 1e-6));
}

TEST(L2NormalizeTest, ZeroRowStaysZeroWithoutNaN) {
  Blob<double> x({1, 3});
  Blob<double> y, dx, dy({1, 3});
  dy.data = {1, 2, 3};
  std::vector<double> norms;
  L2NormalizeRowsForward(x, &y, &norms);
  EXPECT_EQ(y.data, (std::vector<double>{0, 0, 0}));
  L2NormalizeRowsBackward(y, norms, dy, &dx);
  EXPECT_EQ(dx.data, (std::vector<double>{1e12, 2e12, 3e12}));  // y = x / eps is linear
}

}  // namespace
}  // namespace eigen_backend
}  // namespace moco
