// Where an eigen optimizer finds its parameters: a function returning them (value and gradient
// pointers, name, shape) in a fixed order, called at every step. An EigenEncoder's, or plain
// arrays in tests.
//
//   EigenLars lars(ParametersOf(encoder), config.optimizer());
#ifndef BACKENDS_EIGEN_PARAMETER_SOURCE_H_
#define BACKENDS_EIGEN_PARAMETER_SOURCE_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "backends/eigen/eigen_encoder.h"
#include "moco/core/optimizer_state_layout.h"

namespace moco {
namespace eigen_backend {

using ParameterSource = std::function<std::vector<StateRef<float>>()>;

// `encoder` must outlive the returned source.
inline ParameterSource ParametersOf(EigenEncoder& encoder) {
  return [&encoder] { return encoder.Parameters(); };
}

// The optimizer state layout of `params` with `slots`.
inline OptimizerStateLayout StateLayoutOf(const std::vector<StateRef<float>>& params,
                                          std::vector<OptimizerSlot> slots) {
  std::vector<std::string> names;
  std::vector<std::vector<int64_t>> shapes;
  for (const StateRef<float>& p : params) {
    names.push_back(p.name);
    shapes.push_back(p.shape);
  }
  return OptimizerStateLayout(std::move(names), std::move(shapes), std::move(slots));
}

// InternalError naming `who` unless `params` are still the parameters `layout` was made from.
inline absl::Status CheckSameParameters(const std::vector<StateRef<float>>& params,
                                        const OptimizerStateLayout& layout, const char* who) {
  bool same = params.size() == layout.num_params();
  for (size_t i = 0; same && i < params.size(); ++i) {
    same = params[i].name == layout.param_name(i) && params[i].shape == layout.param_shape(i) &&
           params[i].grad != nullptr;
  }
  return same ? absl::OkStatus()
              : absl::InternalError(absl::StrCat(who, ": the parameter list changed"));
}

}  // namespace eigen_backend
}  // namespace moco

#endif  // BACKENDS_EIGEN_PARAMETER_SOURCE_H_
