// A backend-neutral handle to a tensor that lives wherever its backend keeps it (host memory for
// eigen, host or GPU memory for torch). The MoCo step passes handles between interface calls and
// never looks inside; only ToHost() copies data out (for logging scalars, checkpoints and tests).
#ifndef MOCO_CORE_TENSOR_H_
#define MOCO_CORE_TENSOR_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "moco/core/host_array.h"

namespace moco {

class Tensor {
 public:
  virtual ~Tensor() = default;
  virtual std::vector<int64_t> shape() const = 0;
  // Name of the backend that made it; a backend rejects another backend's tensors.
  virtual const std::string& backend_name() const = 0;
  // Copies the data to host memory (synchronizing with the device if needed).
  virtual absl::StatusOr<HostArray> ToHost() const = 0;
};

using TensorPtr = std::shared_ptr<Tensor>;

}  // namespace moco

#endif  // MOCO_CORE_TENSOR_H_
