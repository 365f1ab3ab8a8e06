// An encoder network (ResNet backbone + MoCo projection head) owned by a backend.
//
// The MoCo step holds two: the query encoder (trained by SGD) and the key encoder (a momentum
// average of the query encoder). Parameter and buffer names are torchvision's ("conv1.weight",
// "layer1.0.bn1.running_mean", ..., head "fc.weight" or "fc.0.weight"/"fc.2.weight").
//
//   ASSIGN_OR_RETURN(auto query, backend.CreateEncoder(config.model(), seed));
//   ASSIGN_OR_RETURN(TensorPtr q, query->Forward(*images, /*train_bn=*/true, /*record=*/true));
//   RETURN_IF_ERROR(query->Backward(*grad_q));
#ifndef MOCO_CORE_ENCODER_H_
#define MOCO_CORE_ENCODER_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "moco/core/host_array.h"
#include "moco/core/tensor.h"

namespace moco {

class Encoder {
 public:
  virtual ~Encoder() = default;

  // images (N, C, H, W) -> L2-normalized head output (N, feature_dim).
  // train_bn: BatchNorm uses batch statistics, computed separately over bn_splits() equal groups
  //   of the batch (shuffling BN), and updates the running statistics; otherwise running stats.
  // record_for_backward: keep what Backward() needs (query encoder). When false nothing is kept
  //   and no gradient is tracked (key encoder, under no-grad).
  virtual absl::StatusOr<TensorPtr> Forward(const Tensor& images, bool train_bn,
                                            bool record_for_backward) = 0;

  // Accumulates into the parameter gradients d(loss)/d(params) of the last recorded Forward,
  // given grad_output = d(loss)/d(output of that Forward). Consumes the recording.
  virtual absl::Status Backward(const Tensor& grad_output) = 0;

  virtual void ZeroGrad() = 0;

  // Pooled backbone features (N, backbone_dim()) in eval mode (running BN stats), no gradient:
  // what kNN monitoring and the linear probe use (not the projection head's output).
  virtual absl::StatusOr<TensorPtr> BackboneFeatures(const Tensor& images) = 0;

  // Number of groups the batch is split into for BN statistics in train_bn mode.
  virtual void SetBnSplits(int splits) = 0;

  // this.params = m * this.params + (1 - m) * source.params, for parameters only (BN running
  // statistics are the key encoder's own). `source` must be the same backend and architecture.
  virtual absl::Status MomentumUpdateFrom(const Encoder& source, float momentum) = 0;

  // Parameters and buffers (BN running_mean, running_var, num_batches_tracked) by name.
  virtual NamedArrays ExportState() const = 0;
  // Parameter gradients by parameter name (zeros where nothing was accumulated).
  virtual NamedArrays ExportGradients() const = 0;
  // Replaces every parameter and buffer. `state` must hold exactly this encoder's names with
  // the same shapes; otherwise InvalidArgument naming the first missing, unexpected or
  // mis-shaped entry, and nothing is changed.
  virtual absl::Status ImportState(const NamedArrays& state) = 0;

  // Debugging aid (tests/compare_backends): while enabled, every Forward keeps a host copy of
  // each layer's output, in execution order and in the caller's sample order, replacing what
  // the previous Forward kept. Names are torchvision's module names, each holding that
  // module's output: "conv1", "bn1" (after its ReLU), ["maxpool"], "layer1.0.conv1",
  // "layer1.0.bn1" (after its ReLU), ..., "layer1.0.downsample.0", "layer1.0.downsample.1",
  // "layer1.0" (the block output, after the residual add and ReLU; the block's last BN has no
  // entry of its own), ..., "avgpool" (pooled features), "fc" (v1 head) or "fc.1" (after the
  // hidden ReLU) and "fc.2" (v2 head), all before the L2 normalization. Off by default: it
  // copies every activation.
  virtual void SetActivationCapture(bool enabled) = 0;
  virtual const OrderedArrays& CapturedActivations() const = 0;

  virtual int64_t feature_dim() const = 0;
  virtual int64_t backbone_dim() const = 0;
};

}  // namespace moco

#endif  // MOCO_CORE_ENCODER_H_
