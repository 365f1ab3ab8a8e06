// EigenBackend: the CPU reference backend ("eigen" in the registry; backend.name: "eigen").
// Link //backends/eigen:eigen_backend (alwayslink) to register it.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<Backend> b, CreateBackend("eigen", {"cpu", /*threads=*/2}));
#ifndef BACKENDS_EIGEN_EIGEN_BACKEND_H_
#define BACKENDS_EIGEN_EIGEN_BACKEND_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "moco/core/backend.h"

namespace moco {
namespace eigen_backend {

class EigenBackend final : public Backend {
 public:
  // device must be "cpu" (InvalidArgument naming backend.device otherwise). threads > 0 sets
  // OpenMP's and Eigen's thread count for the process; 0 keeps all cores.
  static absl::StatusOr<std::unique_ptr<Backend>> Create(const BackendOptions& options);

  const std::string& name() const override;
  std::string device() const override { return "cpu"; }
  using Backend::CreateEncoder;
  absl::StatusOr<std::unique_ptr<Encoder>> CreateEncoder(const ModelConfig& model, uint64_t seed,
                                                         const EncoderOptions& options) override;
  absl::StatusOr<std::unique_ptr<KeyQueue>> CreateQueue(int64_t size, int64_t dim,
                                                        uint64_t seed) override;
  absl::StatusOr<std::unique_ptr<ContrastiveLoss>> CreateInfoNceLoss() override;
  absl::StatusOr<std::unique_ptr<Optimizer>> CreateSgd(Encoder& encoder,
                                                       const OptimizerConfig& config) override;
  absl::StatusOr<std::unique_ptr<Optimizer>> CreateLars(Encoder& encoder,
                                                        const OptimizerConfig& config) override;
  absl::StatusOr<std::unique_ptr<Optimizer>> CreateAdamW(Encoder& encoder,
                                                         const OptimizerConfig& config) override;
  absl::StatusOr<TensorPtr> Upload(const HostArray& array) override;
  absl::StatusOr<TensorPtr> GatherRows(const Tensor& x, const std::vector<int64_t>& rows) override;
  absl::StatusOr<TensorPtr> Scale(const Tensor& x, float factor) override;
  absl::Status AverageAcrossRanks(Encoder& encoder, RankAveraged what,
                                  Communicator& communicator) override;

 private:
  EigenBackend() = default;
};

}  // namespace eigen_backend
}  // namespace moco

#endif  // BACKENDS_EIGEN_EIGEN_BACKEND_H_
