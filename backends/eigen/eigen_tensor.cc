#include "backends/eigen/eigen_tensor.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace moco {
namespace eigen_backend {

const std::string& EigenBackendName() {
  static const auto* const name = new std::string("eigen");
  return *name;
}

std::shared_ptr<EigenTensor> MakeEigenTensor(HostArray array) {
  return std::make_shared<EigenTensor>(std::move(array));
}

absl::StatusOr<const EigenTensor*> AsEigenTensor(const Tensor& t, const std::string& what) {
  const auto* e = dynamic_cast<const EigenTensor*>(&t);
  if (e == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": tensor belongs to backend '",
                                                   t.backend_name(), "', not 'eigen'"));
  }
  return e;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

}  // namespace eigen_backend
}  // namespace moco
