// EigenTensor: the Eigen backend's Tensor, a float array in host memory (row-major), and the
// helpers that check a Tensor handed to this backend really is one of ours.
//
//   TensorPtr t = MakeEigenTensor(HostArray({2, 3}));
//   ASSIGN_OR_RETURN(const EigenTensor* e, AsEigenTensor(*t, "Encoder::Forward images"));
#ifndef BACKENDS_EIGEN_EIGEN_TENSOR_H_
#define BACKENDS_EIGEN_EIGEN_TENSOR_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "moco/core/host_array.h"
#include "moco/core/tensor.h"

namespace moco {
namespace eigen_backend {

// The registry name of this backend.
const std::string& EigenBackendName();

class EigenTensor final : public Tensor {
 public:
  explicit EigenTensor(HostArray array) : array_(std::move(array)) {}
  std::vector<int64_t> shape() const override { return array_.shape(); }
  const std::string& backend_name() const override { return EigenBackendName(); }
  absl::StatusOr<HostArray> ToHost() const override { return array_; }

  const HostArray& array() const { return array_; }
  HostArray& mutable_array() { return array_; }

 private:
  HostArray array_;
};

std::shared_ptr<EigenTensor> MakeEigenTensor(HostArray array);

// `t` as an EigenTensor, or InvalidArgument naming `what` when it belongs to another backend.
absl::StatusOr<const EigenTensor*> AsEigenTensor(const Tensor& t, const std::string& what);

// "[2, 3]".
std::string ShapeString(const std::vector<int64_t>& shape);

}  // namespace eigen_backend
}  // namespace moco

#endif  // BACKENDS_EIGEN_EIGEN_TENSOR_H_
