// Optional debugging interface of an Encoder (tests/compare_backends, the backend conformance
// test): per-layer outputs of the last Forward. Reached through Encoder::activation_capture(),
// which is null for encoders that do not offer it.
//
//   ActivationCapture* capture = encoder->activation_capture();
//   if (capture == nullptr) return absl::UnimplementedError("no activation capture");
//   capture->Enable(true);
//   ASSIGN_OR_RETURN(TensorPtr out, encoder->Forward(*images, true, false));
//   for (const auto& [layer, array] : capture->Activations()) ...
#ifndef MOCO_CORE_ACTIVATION_CAPTURE_H_
#define MOCO_CORE_ACTIVATION_CAPTURE_H_

#include "moco/core/host_array.h"

namespace moco {

class ActivationCapture {
 public:
  virtual ~ActivationCapture() = default;

  // While enabled, every Forward keeps a host copy of each layer's output, in execution order
  // and in the caller's sample order, replacing what the previous Forward kept. Disabling clears
  // it. Off by default: it copies every activation.
  // Names are torchvision's module names, each holding that module's output: "conv1", "bn1"
  // (after its ReLU), ["maxpool"], "layer1.0.conv1", "layer1.0.bn1" (after its ReLU), ...,
  // "layer1.0.downsample.0", "layer1.0.downsample.1", "layer1.0" (the block output, after the
  // residual add and ReLU; the block's last BN has no entry of its own), ..., "avgpool" (pooled
  // features), then the projector head's layers (HeadSpec::OutputName: "fc" for the v1 head,
  // "fc.1" after the hidden ReLU and "fc.2" for the v2 head), all before the L2 normalization.
  virtual void Enable(bool enabled) = 0;
  virtual const OrderedArrays& Activations() const = 0;
};

}  // namespace moco

#endif  // MOCO_CORE_ACTIVATION_CAPTURE_H_
