// An optimizer bound to one encoder's parameters (moco/core/optimizer_factory.h picks one from
// optimizer.algorithm). Computation is in float32, as torch.optim's; the rules:
//
// SGD (v1/v2), torch.optim.SGD:
//   g = grad + weight_decay * p;  buf = momentum * buf + g  (buf = g on the first step);
//   p = p - lr * buf.
// Weight decay applies to every parameter (BN and biases included), as the MoCo code does.
//
// LARS (v3 ResNet), facebookresearch/moco-v3's LARS; eta = lars_trust_coefficient:
//   parameters with more than one dimension (conv and linear weights):
//     d = grad + weight_decay * p;  q = eta * ||p|| / ||d||, or 1 when ||p|| or ||d|| is 0;
//     d = q * d;
//   one-dimensional parameters (BN weights and biases, linear biases): d = grad (no weight
//   decay, no trust ratio);
//   mu = momentum * mu + d  (mu = 0 before the first step);  p = p - lr * mu.
//
// AdamW (v3 ViT), torch.optim.AdamW (amsgrad off), on every parameter; t counts this
// parameter's steps from 1, b1, b2, eps = adam_beta1, adam_beta2, adam_eps:
//   p = p * (1 - lr * weight_decay);  m = b1 m + (1 - b1) grad;  v = b2 v + (1 - b2) grad^2;
//   p = p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
//
// State (ExportState / ImportState, layout in moco/core/optimizer_state_layout.h), for each
// parameter P that has taken a step:
//   SGD, LARS: "P" = the momentum buffer (buf, mu), P's shape;
//   AdamW: "P.exp_avg" = m, "P.exp_avg_sq" = v (P's shape), "P.step" = t (shape {}, a float
//   holding the integer, as torch keeps it; exact up to 2^24 steps, beyond which Step fails).
// Importing what ExportState gave continues the run bitwise as if it had not stopped.
#ifndef MOCO_CORE_OPTIMIZER_H_
#define MOCO_CORE_OPTIMIZER_H_

#include "absl/status/status.h"
#include "moco/core/host_array.h"

namespace moco {

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // One update of the bound encoder from its accumulated gradients, at learning rate `lr`.
  virtual absl::Status Step(float lr) = 0;
  // The state above (nothing for a parameter before its first step).
  virtual NamedArrays ExportState() const = 0;
  // Any subset of the parameters (a parameter without entries starts afresh at its next step);
  // InvalidArgument naming the entry for an unknown name, a wrong shape or an incomplete
  // parameter, and then nothing is changed.
  virtual absl::Status ImportState(const NamedArrays& state) = 0;
};

}  // namespace moco

#endif  // MOCO_CORE_OPTIMIZER_H_
