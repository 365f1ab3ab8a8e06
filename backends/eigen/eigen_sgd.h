// EigenSgd: torch.optim.SGD semantics (moco/core/optimizer.h) over an EigenEncoder's parameters.
//
//   EigenSgd sgd(encoder, config.optimizer());
//   RETURN_IF_ERROR(sgd.Step(lr));
#ifndef BACKENDS_EIGEN_EIGEN_SGD_H_
#define BACKENDS_EIGEN_EIGEN_SGD_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "backends/eigen/eigen_encoder.h"
#include "moco/config/config.pb.h"
#include "moco/core/optimizer.h"

namespace moco {
namespace eigen_backend {

class EigenSgd final : public Optimizer {
 public:
  // `encoder` must outlive the optimizer. Uses config.momentum() and config.weight_decay().
  EigenSgd(EigenEncoder& encoder, const OptimizerConfig& config);

  absl::Status Step(float lr) override;
  // Buffers of the parameters that have one (all after the first Step with momentum != 0).
  NamedArrays ExportState() const override;
  // Any subset of the parameter names (a parameter without a buffer starts afresh at its next
  // step); InvalidArgument naming an unknown name or a wrong shape, and nothing is changed.
  absl::Status ImportState(const NamedArrays& state) override;

 private:
  EigenEncoder& encoder_;
  float momentum_;
  float weight_decay_;
  std::vector<std::string> names_;
  std::vector<std::vector<int64_t>> shapes_;
  std::vector<std::vector<float>> buffers_;  // empty = none yet
};

}  // namespace eigen_backend
}  // namespace moco

#endif  // BACKENDS_EIGEN_EIGEN_SGD_H_
