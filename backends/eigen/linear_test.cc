#include "backends/eigen/linear.h"

#include <vector>

#include "backends/eigen/grad_check.h"
#include "gtest/gtest.h"

namespace moco {
namespace eigen_backend {
namespace {

TEST(LinearTest, ForwardMatchesLoopsAndBackwardMatchesFiniteDifferences) {
  const int64_t n = 5, in = 7, out = 3;
  Blob<double> x = RandomBlob({n, in}, 71);
  std::vector<double> w = RandomBlob({out, in}, 72).data, b = RandomBlob({out}, 73).data;
  Blob<double> y;
  LinearForward(x, w.data(), b.data(), out, &y);
  ASSERT_EQ(y.shape, (std::vector<int64_t>{n, out}));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t o = 0; o < out; ++o) {
      double s = b[o];
      for (int64_t j = 0; j < in; ++j) s += x.data[i * in + j] * w[o * in + j];
      EXPECT_NEAR(y.data[i * out + o], s, 1e-13);
    }
  Blob<double> r = RandomBlob(y.shape, 74);
  auto loss = [&] {
    Blob<double> o;
    LinearForward(x, w.data(), b.data(), out, &o);
    return Dot(o.data, r.data);
  };
  Blob<double> dx;
  std::vector<double> dw(w.size(), 0.0), db(b.size(), 0.0);
  LinearBackward(x, w.data(), r, &dx, dw.data(), db.data());
  EXPECT_TRUE(AllClose(dx.data, NumericGradient(loss, &x.data), 1e-8, 1e-6)) << "dx";
  EXPECT_TRUE(AllClose(dw, NumericGradient(loss, &w), 1e-8, 1e-6)) << "dw";
  EXPECT_TRUE(AllClose(db, NumericGradient(loss, &b), 1e-8, 1e-6)) << "db";
}

}  // namespace
}  // namespace eigen_backend
}  // namespace moco
