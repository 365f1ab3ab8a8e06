// EigenLars: moco-v3's LARS (moco/core/optimizer.h) over eigen parameters, the math in lars.h.
//
//   EigenLars lars(ParametersOf(encoder), config.optimizer());
//   RETURN_IF_ERROR(lars.Step(lr));
#ifndef BACKENDS_EIGEN_EIGEN_LARS_H_
#define BACKENDS_EIGEN_EIGEN_LARS_H_

#include <vector>

#include "absl/status/status.h"
#include "backends/eigen/parameter_source.h"
#include "moco/config/config.pb.h"
#include "moco/core/optimizer.h"
#include "moco/core/optimizer_state_layout.h"

namespace moco {
namespace eigen_backend {

class EigenLars final : public Optimizer {
 public:
  // Uses config.momentum(), weight_decay() and lars_trust_coefficient(). The source must keep
  // returning the same parameters (names, shapes, order) for the optimizer's lifetime.
  EigenLars(ParameterSource params, const OptimizerConfig& config);

  absl::Status Step(float lr) override;
  // "<param>" = mu, for every parameter after the first step.
  NamedArrays ExportState() const override;
  absl::Status ImportState(const NamedArrays& state) override;

 private:
  ParameterSource params_;
  OptimizerStateLayout layout_;
  float momentum_, weight_decay_, eta_;
  std::vector<std::vector<float>> mu_;  // empty = no step yet (then zero)
};

}  // namespace eigen_backend
}  // namespace moco

#endif  // BACKENDS_EIGEN_EIGEN_LARS_H_
