#include "moco/core/host_array.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "glog/logging.h"

namespace moco {

absl::StatusOr<int64_t> HostArray::NumElements(const std::vector<int64_t>& shape) {
  constexpr int64_t kMaxElements = int64_t{1} << 62;
  int64_t n = 1;
  for (const int64_t d : shape) {
    if (d < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("shape ", ShapeToString(shape), " has a negative dimension"));
    }
    if (d != 0 && n > kMaxElements / d) {
      return absl::InvalidArgumentError(
          absl::StrCat("shape ", ShapeToString(shape), " has more than 2^62 elements"));
    }
    n *= d;
  }
  return n;
}

HostArray::HostArray(std::vector<int64_t> shape) : shape_(std::move(shape)) {
  absl::StatusOr<int64_t> n = NumElements(shape_);
  CHECK(n.ok()) << n.status();
  data_.assign(static_cast<size_t>(*n), 0.0f);
}

HostArray::HostArray(std::vector<int64_t> shape, std::vector<float> data) {
  absl::StatusOr<HostArray> checked = FromData(std::move(shape), std::move(data));
  CHECK(checked.ok()) << checked.status();
  *this = *std::move(checked);
}

void HostArray::Reshape(std::vector<int64_t> shape) {
  absl::StatusOr<int64_t> n = NumElements(shape);
  CHECK(n.ok()) << n.status();
  shape_ = std::move(shape);
  data_.resize(static_cast<size_t>(*n));
}

absl::StatusOr<HostArray> HostArray::FromData(std::vector<int64_t> shape,
                                              std::vector<float> data) {
  absl::StatusOr<int64_t> n = NumElements(shape);
  if (!n.ok()) return n.status();
  if (static_cast<uint64_t>(*n) != data.size()) {
    return absl::InvalidArgumentError(absl::StrCat("shape ", ShapeToString(shape), " holds ", *n,
                                                   " values but ", data.size(), " were given"));
  }
  return HostArray(Unchecked{}, std::move(shape), std::move(data));
}

std::string ShapeToString(const std::vector<int64_t>& shape) {
  return absl::StrCat("(", absl::StrJoin(shape, ", "), ")");
}

}  // namespace moco
