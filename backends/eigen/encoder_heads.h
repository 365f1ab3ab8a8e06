// The part of an Eigen encoder after its backbone, shared by ResNet<T> and ViT<T>: the MoCo
// projector, the v3 predictor when there is one, and the L2 normalization of the last head's
// output, with their backward passes. `Workspace` is the network's workspace; these functions
// use its fields features, projector, predictor, head_output, output, norms, recorded,
// d_output, d_projected and d_features.
#ifndef BACKENDS_EIGEN_ENCODER_HEADS_H_
#define BACKENDS_EIGEN_ENCODER_HEADS_H_

#include <optional>

#include "backends/eigen/batch_norm.h"
#include "backends/eigen/blob.h"
#include "backends/eigen/elementwise.h"
#include "backends/eigen/mlp_head.h"
#include "glog/logging.h"

namespace moco {
namespace eigen_backend {

// ws->features -> the heads -> ws->output (L2-normalized, returned); marks ws recorded.
template <typename T, typename Workspace>
const Blob<T>& HeadsForward(MlpHead<T>& projector, std::optional<MlpHead<T>>& predictor,
                            const BatchNormOptions& bn, Workspace* ws) {
  const Blob<T>* h = &projector.Forward(ws->features, bn, &ws->projector);
  if (predictor) h = &predictor->Forward(*h, bn, &ws->predictor);
  ws->head_output = h;
  L2NormalizeRowsForward(*h, &ws->output, &ws->norms);
  ws->recorded = true;
  return ws->output;
}

// d(loss)/d(ws->output) -> d(loss)/d(head output), in ws->d_output (returned).
template <typename T, typename Workspace>
const Blob<T>& NormalizationBackward(const Blob<T>& grad_output, Workspace* ws) {
  CHECK(ws->recorded) << "Backward without a recorded Forward";
  CHECK(grad_output.shape == ws->output.shape);
  L2NormalizeRowsBackward(ws->output, ws->norms, grad_output, &ws->d_output);
  return ws->d_output;
}

// d(loss)/d(head output) -> the heads' parameter gradients (accumulated) and
// d(loss)/d(features) in ws->d_features (returned); consumes the recording.
template <typename T, typename Workspace>
const Blob<T>& HeadsBackward(MlpHead<T>& projector, std::optional<MlpHead<T>>& predictor,
                             const Blob<T>& grad_head_output, Workspace* ws) {
  CHECK(ws->recorded) << "Backward without a recorded Forward";
  CHECK(grad_head_output.shape == ws->head_output->shape);
  ws->recorded = false;
  const Blob<T>* d_projector_out = &grad_head_output;
  if (predictor) {
    predictor->Backward(ws->projector.out.back(), grad_head_output, &ws->predictor,
                        &ws->d_projected);
    d_projector_out = &ws->d_projected;
  }
  projector.Backward(ws->features, *d_projector_out, &ws->projector, &ws->d_features);
  return ws->d_features;
}

}  // namespace eigen_backend
}  // namespace moco

#endif  // BACKENDS_EIGEN_ENCODER_HEADS_H_
