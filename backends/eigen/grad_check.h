// Test helpers: seeded random blobs and central finite differences in double precision.
//
//   Blob<double> x = RandomBlob({2, 3, 5, 5}, /*seed=*/1);
//   std::vector<double> num = NumericGradient([&] { return Loss(); }, &x.data);
//   EXPECT_TRUE(AllClose(analytic, num, 1e-6, 1e-5));
#ifndef BACKENDS_EIGEN_GRAD_CHECK_H_
#define BACKENDS_EIGEN_GRAD_CHECK_H_

#include <cmath>
#include <cstdint>
#include <random>
#include <sstream>
#include <vector>

#include "backends/eigen/blob.h"
#include "gtest/gtest.h"

namespace moco {
namespace eigen_backend {

inline Blob<double> RandomBlob(std::vector<int64_t> shape, uint64_t seed, double lo = -1.0,
                               double hi = 1.0) {
  Blob<double> b(std::move(shape));
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  for (double& v : b.data) v = dist(rng);
  return b;
}

inline double Dot(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// d loss / d values[i] by central differences for every i (or only the indices in `which`).
template <typename F>
std::vector<double> NumericGradient(F loss, std::vector<double>* values, double eps = 1e-6,
                                    const std::vector<size_t>* which = nullptr) {
  std::vector<double> grad(values->size(), 0.0);
  auto one = [&](size_t i) {
    const double saved = (*values)[i];
    (*values)[i] = saved + eps;
    const double up = loss();
    (*values)[i] = saved - eps;
    const double down = loss();
    (*values)[i] = saved;
    grad[i] = (up - down) / (2 * eps);
  };
  if (which != nullptr) {
    for (size_t i : *which) one(i);
  } else {
    for (size_t i = 0; i < values->size(); ++i) one(i);
  }
  return grad;
}

// |a - b| <= atol + rtol * |b| element-wise; the failure message names the worst element.
inline ::testing::AssertionResult AllClose(const std::vector<double>& a,
                                           const std::vector<double>& b, double atol,
                                           double rtol) {
  if (a.size() != b.size()) {
    return ::testing::AssertionFailure() << "sizes differ: " << a.size() << " vs " << b.size();
  }
  double worst = 0;
  size_t worst_i = 0;
  bool ok = true;
  for (size_t i = 0; i < a.size(); ++i) {
    const double excess = std::abs(a[i] - b[i]) - (atol + rtol * std::abs(b[i]));
    if (!(excess <= 0)) ok = false;
    if (!(excess <= worst)) {
      worst = excess;
      worst_i = i;
    }
  }
  if (ok) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "element " << worst_i << ": " << a[worst_i] << " vs "
                                       << b[worst_i] << " (of " << a.size() << ")";
}

}  // namespace eigen_backend
}  // namespace moco

#endif  // BACKENDS_EIGEN_GRAD_CHECK_H_
