// EigenAdamW: torch.optim.AdamW (moco/core/optimizer.h) over eigen parameters, the math in
// adamw.h.
//
//   EigenAdamW adamw(ParametersOf(encoder), config.optimizer());
//   RETURN_IF_ERROR(adamw.Step(lr));
#ifndef BACKENDS_EIGEN_EIGEN_ADAMW_H_
#define BACKENDS_EIGEN_EIGEN_ADAMW_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "backends/eigen/parameter_source.h"
#include "moco/config/config.pb.h"
#include "moco/core/optimizer.h"
#include "moco/core/optimizer_state_layout.h"

namespace moco {
namespace eigen_backend {

class EigenAdamW final : public Optimizer {
 public:
  // Uses config.adam_beta1(), adam_beta2(), adam_eps() and weight_decay(). The source must keep
  // returning the same parameters (names, shapes, order) for the optimizer's lifetime.
  EigenAdamW(ParameterSource params, const OptimizerConfig& config);

  // FailedPrecondition, and nothing changed, once a step count would pass 2^24.
  absl::Status Step(float lr) override;
  // "<param>.exp_avg", "<param>.exp_avg_sq", "<param>.step", for every parameter after the
  // first step.
  NamedArrays ExportState() const override;
  absl::Status ImportState(const NamedArrays& state) override;

 private:
  struct Slots {
    int64_t step = 0;  // 0 = no step yet (then exp_avg and exp_avg_sq are empty)
    std::vector<float> exp_avg, exp_avg_sq;
  };
  ParameterSource params_;
  OptimizerStateLayout layout_;
  double beta1_, beta2_, eps_, weight_decay_;
  std::vector<Slots> state_;
};

}  // namespace eigen_backend
}  // namespace moco

#endif  // BACKENDS_EIGEN_EIGEN_ADAMW_H_
