// TorchLars: moco-v3's LARS (moco/core/optimizer.h) over named torch parameters, with in-place
// tensor ops on the parameters' device (the trust ratio too: no host round trip per tensor).
//
//   TorchLars lars(encoder.module()->named_parameters(), config.optimizer());
//   RETURN_IF_ERROR(lars.Step(lr));
#ifndef BACKENDS_TORCH_TORCH_LARS_H_
#define BACKENDS_TORCH_TORCH_LARS_H_

#include <torch/torch.h>

#include <string>
#include <vector>

#include "moco/config/config.pb.h"
#include "moco/core/optimizer.h"
#include "moco/core/optimizer_state_layout.h"

namespace moco::torch_backend {

class TorchLars final : public Optimizer {
 public:
  // The tensors share storage with the parameters (as named_parameters() gives them), which
  // must outlive the optimizer. Uses config.momentum(), weight_decay(), lars_trust_coefficient().
  TorchLars(const torch::OrderedDict<std::string, torch::Tensor>& params,
            const OptimizerConfig& config);

  // Parameters without a gradient are skipped (as torch.optim does).
  absl::Status Step(float lr) override;
  // "<param>" = mu, for every parameter that has taken a step.
  NamedArrays ExportState() const override;
  absl::Status ImportState(const NamedArrays& state) override;

 private:
  std::vector<torch::Tensor> params_;
  OptimizerStateLayout layout_;
  std::vector<torch::Tensor> mu_;  // undefined until the parameter's first step
  double momentum_, weight_decay_, eta_;
};

}  // namespace moco::torch_backend

#endif  // BACKENDS_TORCH_TORCH_LARS_H_
