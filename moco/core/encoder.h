// An encoder network (ResNet backbone + MoCo projection head [+ v3 predictor]) owned by a backend.
//
// The MoCo step holds two: the query encoder (trained by SGD) and the key encoder (a momentum
// average of the query encoder). Parameter and buffer names are torchvision's ("conv1.weight",
// "layer1.0.bn1.running_mean", ..., head "fc.weight" or "fc.0.weight"/"fc.2.weight").
//
//   ASSIGN_OR_RETURN(auto query, backend.CreateEncoder(config.model(), seed, {/*bn_splits=*/8}));
//   ASSIGN_OR_RETURN(TensorPtr q, query->Forward(*images, /*train_bn=*/true, /*record=*/true));
//   RETURN_IF_ERROR(query->Backward(*grad_q));
#ifndef MOCO_CORE_ENCODER_H_
#define MOCO_CORE_ENCODER_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "moco/core/activation_capture.h"
#include "moco/core/communicator.h"
#include "moco/core/host_array.h"
#include "moco/core/tensor.h"

namespace moco {

// Fixed when the encoder is created (Backend::CreateEncoder).
struct EncoderOptions {
  // Shuffling BN: in train_bn mode every BatchNorm computes its statistics separately over this
  // many equal groups of consecutive samples (as over that many GPUs). >= 1; the batch size of a
  // train_bn Forward must be divisible by it. Ignored by architectures without BatchNorm.
  int bn_splits = 1;
  // Build the config's predictor head (MoCo v3's query encoder). False for key encoders, which
  // never have one. Without a predictor in the config this changes nothing.
  bool with_predictor = true;
};

class Encoder {
 public:
  virtual ~Encoder() = default;

  // images (N, C, H, W) -> L2-normalized head output (N, feature_dim): the predictor's output
  // when the encoder has one, else the projector's.
  // train_bn: BatchNorm uses batch statistics, computed separately over EncoderOptions::bn_splits
  //   equal groups of the batch (shuffling BN), and updates the running statistics; otherwise
  //   running stats.
  // record_for_backward: keep what Backward() needs (query encoder). When false nothing is kept
  //   and no gradient is tracked (key encoder, under no-grad).
  virtual absl::StatusOr<TensorPtr> Forward(const Tensor& images, bool train_bn,
                                            bool record_for_backward) = 0;

  // Accumulates into the parameter gradients d(loss)/d(params) of the last recorded Forward,
  // given grad_output = d(loss)/d(output of that Forward). Consumes the recording.
  virtual absl::Status Backward(const Tensor& grad_output) = 0;

  virtual void ZeroGrad() = 0;

  // Loss scaling: multiplies every parameter gradient by `factor` (1 / the loss scale) in place
  // and returns whether all of them are finite (inf and nan anywhere give false; the gradients
  // are then meaningless and the optimizer update must be skipped).
  virtual absl::StatusOr<bool> UnscaleGradients(float factor) {
    return absl::UnimplementedError("this backend's encoder has no UnscaleGradients (loss scaling)");
  }

  // Pooled backbone features (N, backbone_dim()) in eval mode (running BN stats), no gradient:
  // what kNN monitoring and the linear probe use (not the projection head's output).
  virtual absl::StatusOr<TensorPtr> BackboneFeatures(const Tensor& images) = 0;

  // this.params = m * this.params + (1 - m) * source.params, for parameters only (BN running
  // statistics are the key encoder's own), matched by name: every parameter of this encoder must
  // exist in `source` with the same shape (InvalidArgument naming it otherwise, and nothing is
  // changed); parameters only `source` has (e.g. a predictor head of a query encoder) are
  // ignored. `source` must be the same backend.
  virtual absl::Status MomentumUpdateFrom(const Encoder& source, float momentum) = 0;

  // Parameters and buffers (BN running_mean, running_var, num_batches_tracked) by name.
  virtual absl::StatusOr<NamedArrays> ExportState() const = 0;
  // Parameter gradients by parameter name (zeros where nothing was accumulated).
  virtual absl::StatusOr<NamedArrays> ExportGradients() const = 0;
  // Replaces every parameter and buffer. `state` must hold exactly this encoder's names with
  // the same shapes; otherwise InvalidArgument naming the first missing, unexpected or
  // mis-shaped entry, and nothing is changed.
  virtual absl::Status ImportState(const NamedArrays& state) = 0;

  // SyncBatchNorm (MoCo v3 under data parallelism): while `group` (not owned) has world > 1,
  // every train_bn Forward normalizes over the union of the batches of all its ranks, and the
  // matching Backward accounts for that; both then run collectives on `group`, so every rank
  // must make the same calls with the same shapes. Null or world 1: this process's batch only.
  // Needs EncoderOptions::bn_splits 1 (FailedPrecondition otherwise); Unimplemented for a
  // backend without it.
  virtual absl::Status SetBatchNormGroup(Communicator* group) {
    if (group == nullptr || group->world_size() == 1) return absl::OkStatus();
    return absl::UnimplementedError("this backend's encoder has no SyncBatchNorm");
  }

  // The optional activation-capture debugging interface (moco/core/activation_capture.h),
  // owned by this encoder; null when the backend does not offer it.
  virtual ActivationCapture* activation_capture() { return nullptr; }

  virtual int64_t feature_dim() const = 0;
  virtual int64_t backbone_dim() const = 0;
};

}  // namespace moco

#endif  // MOCO_CORE_ENCODER_H_
