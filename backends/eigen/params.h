// Parameters and buffers of the Eigen networks: values with their gradients, and named views of
// them (StateRef) through which states are exported, imported and optimized.
#ifndef BACKENDS_EIGEN_PARAMS_H_
#define BACKENDS_EIGEN_PARAMS_H_

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "backends/eigen/blob.h"

namespace moco {
namespace eigen_backend {

// One named parameter or buffer: `value` (and `grad` for parameters, null for buffers) point
// at `size` contiguous elements owned by the network.
template <typename T>
struct StateRef {
  std::string name;
  std::vector<int64_t> shape;
  T* value = nullptr;
  T* grad = nullptr;
  int64_t size = 0;
  bool is_parameter() const { return grad != nullptr; }
};

template <typename T>
struct Param {
  std::vector<int64_t> shape;
  std::vector<T> value, grad;
  void Init(std::vector<int64_t> s) {
    shape = std::move(s);
    value.assign(static_cast<size_t>(Blob<T>::NumElements(shape)), T(0));
    grad.assign(value.size(), T(0));
  }
};

template <typename T>
struct BatchNormParams {
  Param<T> weight, bias;
  std::vector<T> running_mean, running_var;
  std::vector<T> num_batches_tracked{T(0)};  // one exact integer, shape {}
  void Init(int64_t c) {
    weight.Init({c});
    std::fill(weight.value.begin(), weight.value.end(), T(1));
    bias.Init({c});
    running_mean.assign(static_cast<size_t>(c), T(0));
    running_var.assign(static_cast<size_t>(c), T(1));
    num_batches_tracked = {T(0)};
  }
};

template <typename T>
struct LinearParams {
  Param<T> weight, bias;
  int64_t in = 0, out = 0;
};

template <typename T>
void AddParam(const std::string& name, Param<T>* p, std::vector<StateRef<T>>* out) {
  out->push_back({name, p->shape, p->value.data(), p->grad.data(),
                  static_cast<int64_t>(p->value.size())});
}

template <typename T>
void AddBuffer(const std::string& name, std::vector<int64_t> shape, std::vector<T>* b,
               std::vector<StateRef<T>>* out) {
  out->push_back({name, std::move(shape), b->data(), nullptr, static_cast<int64_t>(b->size())});
}

}  // namespace eigen_backend
}  // namespace moco

#endif  // BACKENDS_EIGEN_PARAMS_H_
