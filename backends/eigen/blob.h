// Blob<T>: a dense row-major (C order) array with a shape, the activation and gradient type of
// the Eigen backend's layer functions. Images and feature maps are NCHW, matrices (rows, cols).
//
//   Blob<float> x({2, 3, 8, 8});   // zero-filled
//   x.dim(1) == 3; x.numel() == 384;
#ifndef BACKENDS_EIGEN_BLOB_H_
#define BACKENDS_EIGEN_BLOB_H_

#include <cstdint>
#include <functional>
#include <numeric>
#include <vector>

namespace moco {
namespace eigen_backend {

template <typename T>
struct Blob {
  std::vector<int64_t> shape;
  std::vector<T> data;

  Blob() = default;
  explicit Blob(std::vector<int64_t> s) { Resize(std::move(s)); }

  // Sets the shape; keeps the storage when the size does not change (buffer reuse across
  // steps). New elements are zero; old ones keep whatever they held.
  void Resize(std::vector<int64_t> s) {
    shape = std::move(s);
    data.resize(static_cast<size_t>(NumElements(shape)));
  }
  void SetZero() { std::fill(data.begin(), data.end(), T(0)); }

  int64_t numel() const { return static_cast<int64_t>(data.size()); }
  int64_t dim(int i) const { return shape[static_cast<size_t>(i)]; }
  int rank() const { return static_cast<int>(shape.size()); }
  T* ptr() { return data.data(); }
  const T* ptr() const { return data.data(); }

  static int64_t NumElements(const std::vector<int64_t>& s) {
    return std::accumulate(s.begin(), s.end(), int64_t{1}, std::multiplies<int64_t>());
  }
};

// Work (in multiply-adds or element visits) below which a layer runs on the calling thread:
// OpenMP fork/join costs microseconds and, on a busy machine, much more.
constexpr int64_t kMinParallelWork = int64_t{1} << 15;

// Makes a function parameter a non-deduced context, so that e.g. `nullptr` can be passed for an
// optional `Cache<T>*` argument while T is deduced from the others.
template <typename T>
struct NonDeduced {
  using type = T;
};

}  // namespace eigen_backend
}  // namespace moco

#endif  // BACKENDS_EIGEN_BLOB_H_
