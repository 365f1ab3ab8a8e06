// A numeric backend: the factory for everything the MoCo step computes with. Implementations
// live in backends/<name>/ and register themselves by name (moco/core/backend_registry.h).
//
// Contract: every call does a whole unit of work (a forward, a loss, a queue update), never a
// single tensor op, so a virtual call per batch is the only dispatch cost. On an accelerator,
// tensors stay on the device; only ToHost() and the loss scalars cross to the host.
//
// Data parallelism across processes goes through the Communicator (moco/core/communicator.h):
// the MoCo step all-gathers key images and keys itself, and asks the backend to average an
// encoder's gradients or BN statistics over the ranks (AverageAcrossRanks), the one place that
// needs the encoder's own memory.
#ifndef MOCO_CORE_BACKEND_H_
#define MOCO_CORE_BACKEND_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "moco/config/config.pb.h"
#include "moco/core/communicator.h"
#include "moco/core/contrastive_loss.h"
#include "moco/core/encoder.h"
#include "moco/core/gradient_averager.h"
#include "moco/core/host_array.h"
#include "moco/core/key_queue.h"
#include "moco/core/optimizer.h"
#include "moco/core/tensor.h"

namespace moco {

// What Backend::AverageAcrossRanks averages.
enum class RankAveraged {
  kGradients,            // every parameter gradient accumulated so far (after backward)
  kBatchNormStatistics,  // BN running_mean and running_var (not num_batches_tracked)
};

// BackendConfig.precision (moco/config/config.proto).
enum class Precision { kFp32, kBf16, kFp16 };

struct BackendOptions {
  std::string device = "cpu";  // "cpu", "cuda", "cuda:N"
  int threads = 0;             // intra-op CPU threads, 0 = all cores
  // Encoder arithmetic and activation layout; a backend without them refuses non-defaults
  // at Create (the validator says so first, from the registry's BackendCapabilities).
  Precision precision = Precision::kFp32;
  bool channels_last = false;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const std::string& name() const = 0;
  virtual std::string device() const = 0;

  // A freshly initialized encoder (torchvision's initialization), deterministic in `seed`.
  // InvalidArgument naming the model.* field for an unsupported model, or for bn_splits < 1.
  virtual absl::StatusOr<std::unique_ptr<Encoder>> CreateEncoder(
      const ModelConfig& model, uint64_t seed, const EncoderOptions& options) = 0;
  // With default options (bn_splits 1): encoders that only run in eval mode (kNN, probes).
  absl::StatusOr<std::unique_ptr<Encoder>> CreateEncoder(const ModelConfig& model,
                                                         uint64_t seed) {
    return CreateEncoder(model, seed, EncoderOptions());
  }
  // A queue of `size` random unit keys of dimension `dim`, deterministic in `seed`.
  virtual absl::StatusOr<std::unique_ptr<KeyQueue>> CreateQueue(int64_t size, int64_t dim,
                                                                uint64_t seed) = 0;
  virtual absl::StatusOr<std::unique_ptr<ContrastiveLoss>> CreateInfoNceLoss() = 0;
  // SGD over `encoder`'s parameters; `encoder` must outlive the optimizer.
  virtual absl::StatusOr<std::unique_ptr<Optimizer>> CreateSgd(Encoder& encoder,
                                                               const OptimizerConfig& config) = 0;
  // LARS (moco-v3's) and AdamW (torch.optim.AdamW) over `encoder`'s parameters, semantics in
  // moco/core/optimizer.h; `encoder` must outlive the optimizer. A backend without them answers
  // Unimplemented.
  virtual absl::StatusOr<std::unique_ptr<Optimizer>> CreateLars(Encoder& encoder,
                                                                const OptimizerConfig& config) {
    return absl::UnimplementedError("backend '" + name() + "' has no LARS optimizer");
  }
  virtual absl::StatusOr<std::unique_ptr<Optimizer>> CreateAdamW(Encoder& encoder,
                                                                 const OptimizerConfig& config) {
    return absl::UnimplementedError("backend '" + name() + "' has no AdamW optimizer");
  }

  // Host array -> backend tensor (copied to the device).
  virtual absl::StatusOr<TensorPtr> Upload(const HostArray& array) = 0;
  // Rows of `x` (along dim 0) in the order `rows`: out[i] = x[rows[i]]. Shuffle and unshuffle.
  virtual absl::StatusOr<TensorPtr> GatherRows(const Tensor& x,
                                               const std::vector<int64_t>& rows) = 0;
  // factor * x, a new tensor of x's shape. Loss scaling multiplies the loss gradient with it.
  virtual absl::StatusOr<TensorPtr> Scale(const Tensor& x, float factor) {
    return absl::UnimplementedError("backend '" + name() + "' has no Scale (loss scaling)");
  }

  // Data parallelism: replaces `what` of `encoder` (one of this backend's) by its mean over the
  // ranks of `communicator`, in place. Every rank calls it at the same point with an encoder of
  // the same architecture. Gradients travel as one flat bucket in one all-reduce after the
  // backward (CreateGradientAverager overlaps them with it). World 1: nothing happens.
  virtual absl::Status AverageAcrossRanks(Encoder& encoder, RankAveraged what,
                                          Communicator& communicator) {
    if (communicator.world_size() == 1) return absl::OkStatus();
    return absl::UnimplementedError(
        "backend '" + name() + "' does not support data-parallel training (AverageAcrossRanks)");
  }

  // The per-step gradient average of `encoder` (moco/core/gradient_averager.h); both must
  // outlive it. A backend that can overlap the all-reduce with its backward packs the gradients
  // into buckets of about `bucket_bytes` (the last layers' first) and starts each bucket's
  // all-reduce as soon as its gradients are final. This default averages after the backward
  // through AverageAcrossRanks.
  virtual absl::StatusOr<std::unique_ptr<GradientAverager>> CreateGradientAverager(
      Encoder& encoder, Communicator& communicator, int64_t bucket_bytes);
};

namespace internal {
class AverageAfterBackward final : public GradientAverager {
 public:
  AverageAfterBackward(Backend& backend, Encoder& encoder, Communicator& communicator)
      : backend_(backend), encoder_(encoder), communicator_(communicator) {}
  absl::Status BeforeLastBackward() override { return absl::OkStatus(); }
  absl::Status Finish() override {
    return backend_.AverageAcrossRanks(encoder_, RankAveraged::kGradients, communicator_);
  }

 private:
  Backend& backend_;
  Encoder& encoder_;
  Communicator& communicator_;
};
}  // namespace internal

inline absl::StatusOr<std::unique_ptr<GradientAverager>> Backend::CreateGradientAverager(
    Encoder& encoder, Communicator& communicator, int64_t /*bucket_bytes*/) {
  return std::unique_ptr<GradientAverager>(
      new internal::AverageAfterBackward(*this, encoder, communicator));
}

}  // namespace moco

#endif  // MOCO_CORE_BACKEND_H_
