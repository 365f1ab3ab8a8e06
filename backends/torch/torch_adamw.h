// TorchAdamW: torch.optim.AdamW (moco/core/optimizer.h) over named torch parameters, with the
// same in-place tensor ops as torch 1.13's single-tensor implementation, on the parameters'
// device.
//
//   TorchAdamW adamw(encoder.module()->named_parameters(), config.optimizer());
//   RETURN_IF_ERROR(adamw.Step(lr));
#ifndef BACKENDS_TORCH_TORCH_ADAMW_H_
#define BACKENDS_TORCH_TORCH_ADAMW_H_

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "moco/config/config.pb.h"
#include "moco/core/optimizer.h"
#include "moco/core/optimizer_state_layout.h"

namespace moco::torch_backend {

class TorchAdamW final : public Optimizer {
 public:
  // The tensors share storage with the parameters (as named_parameters() gives them), which
  // must outlive the optimizer. Uses config.adam_beta1(), adam_beta2(), adam_eps() and
  // weight_decay().
  TorchAdamW(const torch::OrderedDict<std::string, torch::Tensor>& params,
             const OptimizerConfig& config);

  // Parameters without a gradient are skipped and keep their step count (as torch.optim does).
  // FailedPrecondition, and nothing changed, once a step count would pass 2^24.
  absl::Status Step(float lr) override;
  // "<param>.exp_avg", "<param>.exp_avg_sq", "<param>.step", for every parameter that has taken
  // a step.
  NamedArrays ExportState() const override;
  absl::Status ImportState(const NamedArrays& state) override;

 private:
  struct Slots {
    int64_t step = 0;  // 0 = no step yet (then the tensors are undefined)
    torch::Tensor exp_avg, exp_avg_sq;
  };
  std::vector<torch::Tensor> params_;
  OptimizerStateLayout layout_;
  std::vector<Slots> state_;
  double beta1_, beta2_, eps_, weight_decay_;
};

}  // namespace moco::torch_backend

#endif  // BACKENDS_TORCH_TORCH_ADAMW_H_
