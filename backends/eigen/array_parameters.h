// Test helper: named parameters (values and gradients) in plain arrays, served to an eigen
// optimizer through a ParameterSource as an EigenEncoder serves its own.
//
//   ArrayParameters params(initial_values);      // NamedArrays
//   EigenLars lars(params.Source(), config);
//   params.SetGrads(grads);  lars.Step(lr);  params.Values();
#ifndef BACKENDS_EIGEN_ARRAY_PARAMETERS_H_
#define BACKENDS_EIGEN_ARRAY_PARAMETERS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "backends/eigen/parameter_source.h"
#include "moco/core/host_array.h"

namespace moco {
namespace eigen_backend {

class ArrayParameters {
 public:
  // Gradients start at zero. Parameters are ordered by name.
  explicit ArrayParameters(const NamedArrays& init) {
    for (const auto& [name, a] : init) {
      Entry& e = entries_[name];
      e.shape = a.shape();
      e.value = a.data();
      e.grad.assign(e.value.size(), 0.0f);
    }
  }
  ArrayParameters(const ArrayParameters&) = delete;
  ArrayParameters& operator=(const ArrayParameters&) = delete;

  // Valid while this object lives.
  ParameterSource Source() {
    return [this] {
      std::vector<StateRef<float>> refs;
      for (auto& [name, e] : entries_) {
        refs.push_back({name, e.shape, e.value.data(), e.grad.data(),
                        static_cast<int64_t>(e.value.size())});
      }
      return refs;
    };
  }
  // `grads` must hold every parameter with its size.
  void SetGrads(const NamedArrays& grads) {
    for (auto& [name, e] : entries_) e.grad = grads.at(name).data();
  }
  NamedArrays Values() const {
    NamedArrays out;
    for (const auto& [name, e] : entries_) out[name] = HostArray(e.shape, e.value);
    return out;
  }

 private:
  struct Entry {
    std::vector<int64_t> shape;
    std::vector<float> value, grad;
  };
  std::map<std::string, Entry> entries_;
};

}  // namespace eigen_backend
}  // namespace moco

#endif  // BACKENDS_EIGEN_ARRAY_PARAMETERS_H_
