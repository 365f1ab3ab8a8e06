// ForwardOptions: how an Eigen network's forward treats its BatchNorms (ResNet<T>, ViT<T>).
#ifndef BACKENDS_EIGEN_FORWARD_OPTIONS_H_
#define BACKENDS_EIGEN_FORWARD_OPTIONS_H_

#include "backends/eigen/batch_norm.h"

namespace moco {
namespace eigen_backend {

struct ForwardOptions {
  bool train_bn = true;
  int bn_splits = 1;
  bool update_running = true;  // train_bn only
  // train_bn only: SyncBatchNorm over these ranks in every BN, backbone and heads (not owned;
  // needs bn_splits 1).
  BatchNormGroup* bn_group = nullptr;
};

}  // namespace eigen_backend
}  // namespace moco

#endif  // BACKENDS_EIGEN_FORWARD_OPTIONS_H_
