// EigenNetwork: what EigenEncoder needs of the network it trains, so one encoder class serves
// ResNet<float> (backends/eigen/resnet.h) and ViT<float> (backends/eigen/vit.h). Each network
// owns two workspaces: the recorded one (the forward a Backward follows) and another for
// unrecorded forwards and features, so a key-encoder or feature pass between Forward and
// Backward does not disturb the recording.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<EigenNetwork> net, MakeEigenNetwork(spec, seed));
//   const Blob<float>& z = net->Forward(images, options, /*record=*/true);
//   net->Backward(grad_z);
#ifndef BACKENDS_EIGEN_EIGEN_NETWORK_H_
#define BACKENDS_EIGEN_EIGEN_NETWORK_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "backends/eigen/blob.h"
#include "backends/eigen/forward_options.h"
#include "backends/eigen/params.h"
#include "moco/core/model_spec.h"

namespace moco {
namespace eigen_backend {

class EigenNetwork {
 public:
  using LayerOutputList = std::vector<std::pair<std::string, const Blob<float>*>>;
  virtual ~EigenNetwork() = default;

  // L2-normalized head output (N, feature_dim), into the recorded workspace if `record`.
  virtual const Blob<float>& Forward(const Blob<float>& images, const ForwardOptions& options,
                                     bool record) = 0;
  // Eval-mode backbone features (N, backbone_dim), in the unrecorded workspace.
  virtual const Blob<float>& Features(const Blob<float>& images) = 0;
  // Whether the recorded workspace holds a Forward not yet consumed by Backward, and its output
  // shape.
  virtual bool recorded() const = 0;
  virtual const std::vector<int64_t>& recorded_output_shape() const = 0;
  // Accumulates parameter gradients from d(loss)/d(output) of the recorded Forward.
  virtual void Backward(const Blob<float>& grad_output) = 0;
  // The layer outputs of the last Forward into the recorded (or the other) workspace.
  virtual LayerOutputList LayerOutputs(bool recorded_workspace) const = 0;

  virtual void ZeroGrad() = 0;
  virtual std::vector<StateRef<float>> States() = 0;
  virtual std::vector<StateRef<float>> Parameters() = 0;
  virtual const EncoderSpec& spec() const = 0;
  virtual int64_t backbone_dim() const = 0;
  virtual int64_t feature_dim() const = 0;
};

// `spec`'s ResNet or ViT, initialized from `seed`.
absl::StatusOr<std::unique_ptr<EigenNetwork>> MakeEigenNetwork(const EncoderSpec& spec,
                                                               uint64_t seed);

}  // namespace eigen_backend
}  // namespace moco

#endif  // BACKENDS_EIGEN_EIGEN_NETWORK_H_
