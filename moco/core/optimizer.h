// SGD bound to one encoder's parameters, with torch.optim.SGD semantics:
//   g = grad + weight_decay * p;  buf = momentum * buf + g  (buf = g on the first step);
//   p = p - lr * buf.
// Weight decay applies to every parameter (BN and biases included), as the MoCo code does.
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
  // Momentum buffers named like the parameters they belong to (absent before the first step).
  virtual NamedArrays ExportState() const = 0;
  virtual absl::Status ImportState(const NamedArrays& state) = 0;
};

}  // namespace moco

#endif  // MOCO_CORE_OPTIMIZER_H_
