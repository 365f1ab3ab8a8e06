// The LibTorch backend (registered as "torch"): CPU with Debian's LibTorch, CUDA when built
// against a CUDA LibTorch (MOCO_LIBTORCH, see README) and backend.device is "cuda[:N]".
#ifndef BACKENDS_TORCH_TORCH_BACKEND_H_
#define BACKENDS_TORCH_TORCH_BACKEND_H_

#include <torch/torch.h>

#include <memory>

#include "backends/torch/numerics.h"
#include "moco/core/backend.h"

namespace moco::torch_backend {

class TorchBackend final : public Backend {
 public:
  // FailedPrecondition when a CUDA device is asked for and this LibTorch or machine has none.
  static absl::StatusOr<std::unique_ptr<Backend>> Create(const BackendOptions& options);

  const std::string& name() const override;
  std::string device() const override { return device_.str(); }
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
  // Buckets all-reduced during the backward (backends/torch/torch_gradient_buckets.h).
  absl::StatusOr<std::unique_ptr<GradientAverager>> CreateGradientAverager(
      Encoder& encoder, Communicator& communicator, int64_t bucket_bytes) override;

 private:
  TorchBackend(torch::Device device, Numerics numerics) : device_(device), numerics_(numerics) {}
  torch::Device device_;
  Numerics numerics_;
};

}  // namespace moco::torch_backend

#endif  // BACKENDS_TORCH_TORCH_BACKEND_H_
