// EigenEncoder: the Encoder interface on ResNet<float> or ViT<float> (backends/eigen/resnet.h,
// vit.h, through EigenNetwork): same architecture, parameter names and initialization scheme as
// the torch backend, so states move between the two through NamedArrays.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<EigenEncoder> enc, EigenEncoder::Create(config.model(), 0));
//   ASSIGN_OR_RETURN(TensorPtr q, enc->Forward(*images, /*train_bn=*/true, /*record=*/true));
//   RETURN_IF_ERROR(enc->Backward(*grad_q));
//
// The recorded forward (record_for_backward = true) and the unrecorded ones (key encoder,
// BackboneFeatures) use separate workspaces, so an unrecorded call between Forward and
// Backward does not disturb the recording. Not thread-safe.
#ifndef BACKENDS_EIGEN_EIGEN_ENCODER_H_
#define BACKENDS_EIGEN_EIGEN_ENCODER_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "backends/eigen/eigen_network.h"
#include "moco/config/config.pb.h"
#include "moco/core/activation_capture.h"
#include "moco/core/encoder.h"

namespace moco {
namespace eigen_backend {

class EigenEncoder final : public Encoder, public ActivationCapture {
 public:
  // InvalidArgument naming the model.* field for an unsupported configuration, or for
  // options.bn_splits < 1.
  static absl::StatusOr<std::unique_ptr<EigenEncoder>> Create(const ModelConfig& model,
                                                              uint64_t seed,
                                                              const EncoderOptions& options);

  absl::StatusOr<TensorPtr> Forward(const Tensor& images, bool train_bn,
                                    bool record_for_backward) override;
  absl::Status Backward(const Tensor& grad_output) override;
  void ZeroGrad() override;
  absl::StatusOr<bool> UnscaleGradients(float factor) override;
  absl::StatusOr<TensorPtr> BackboneFeatures(const Tensor& images) override;
  absl::Status MomentumUpdateFrom(const Encoder& source, float momentum) override;
  absl::StatusOr<NamedArrays> ExportState() const override;
  absl::StatusOr<NamedArrays> ExportGradients() const override;
  absl::Status ImportState(const NamedArrays& state) override;
  absl::Status SetBatchNormGroup(Communicator* group) override;
  ActivationCapture* activation_capture() override { return this; }
  // ActivationCapture.
  void Enable(bool enabled) override;
  const OrderedArrays& Activations() const override { return captured_; }
  int64_t feature_dim() const override { return net_->feature_dim(); }
  int64_t backbone_dim() const override { return net_->backbone_dim(); }

  // Parameters (value and grad) for the optimizer, in a fixed order.
  std::vector<StateRef<float>> Parameters() { return net_->Parameters(); }
  int bn_splits() const { return bn_splits_; }

 private:
  EigenEncoder(std::unique_ptr<EigenNetwork> net, int bn_splits)
      : net_(std::move(net)), bn_splits_(bn_splits) {}
  absl::Status CheckImages(const HostArray& images, bool train_bn) const;
  // The first collective failure of SyncBatchNorm since the last call (then cleared), as
  // Unavailable naming `where`; OK when there was none.
  absl::Status TakeSyncError(const char* where);

  // SyncBatchNorm's group on the run's communicator: float host all-reduces; the first failure
  // is kept for TakeSyncError (the layers cannot return errors).
  class CommunicatorBatchNormGroup final : public BatchNormGroup {
   public:
    explicit CommunicatorBatchNormGroup(Communicator& comm) : comm_(comm) {}
    int world_size() const override { return comm_.world_size(); }
    int rank() const override { return comm_.rank(); }
    void AllReduceSum(std::vector<double>& values) override;
    absl::Status TakeError();

   private:
    Communicator& comm_;
    absl::Status error_;
  };

  std::unique_ptr<EigenNetwork> net_;
  int bn_splits_ = 1;
  std::unique_ptr<CommunicatorBatchNormGroup> bn_group_;  // null: no SyncBatchNorm
  Blob<float> scratch_;
  bool capture_activations_ = false;
  OrderedArrays captured_;
};

}  // namespace eigen_backend
}  // namespace moco

#endif  // BACKENDS_EIGEN_EIGEN_ENCODER_H_
