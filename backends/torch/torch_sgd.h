// moco::Optimizer for a TorchEncoder's parameters (torch.optim.SGD semantics, see
// moco/core/optimizer.h), implemented with in-place tensor ops on the parameters' device.
#ifndef BACKENDS_TORCH_TORCH_SGD_H_
#define BACKENDS_TORCH_TORCH_SGD_H_

#include <torch/torch.h>

#include <string>
#include <vector>

#include "backends/torch/torch_encoder.h"
#include "moco/config/config.pb.h"
#include "moco/core/optimizer.h"

namespace moco::torch_backend {

class TorchSgd final : public Optimizer {
 public:
  TorchSgd(TorchEncoder& encoder, const OptimizerConfig& config);
  absl::Status Step(float lr) override;
  NamedArrays ExportState() const override;
  absl::Status ImportState(const NamedArrays& state) override;

 private:
  std::vector<std::string> names_;
  std::vector<torch::Tensor> params_;
  std::vector<torch::Tensor> momentum_buffers_;  // undefined until the first step
  float momentum_;
  float weight_decay_;
};

}  // namespace moco::torch_backend

#endif  // BACKENDS_TORCH_TORCH_SGD_H_
