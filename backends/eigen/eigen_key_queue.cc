#include "backends/eigen/eigen_key_queue.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"
#include "moco/core/status_macros.h"

namespace moco {
namespace eigen_backend {

absl::StatusOr<std::unique_ptr<EigenKeyQueue>> EigenKeyQueue::Create(int64_t size, int64_t dim,
                                                                     uint64_t seed) {
  if (size <= 0 || dim <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("queue size (", size, ") and key dim (", dim, ") must be > 0"));
  }
  HostArray a({size, dim});
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  for (int64_t i = 0; i < size; ++i) {
    std::vector<double> row(static_cast<size_t>(dim));
    double sq = 0;
    for (double& v : row) {
      v = normal(rng);
      sq += v * v;
    }
    const double norm = std::max(std::sqrt(sq), 1e-12);
    for (int64_t j = 0; j < dim; ++j) {
      a.mutable_data()[static_cast<size_t>(i * dim + j)] = static_cast<float>(row[static_cast<size_t>(j)] / norm);
    }
  }
  return std::unique_ptr<EigenKeyQueue>(new EigenKeyQueue(MakeEigenTensor(std::move(a))));
}

absl::Status EigenKeyQueue::Enqueue(const Tensor& keys) {
  ASSIGN_OR_RETURN(const EigenTensor* k, AsEigenTensor(keys, "KeyQueue::Enqueue"));
  HostArray& q = keys_->mutable_array();
  const int64_t size = q.shape()[0], dim = q.shape()[1];
  const auto& s = k->array().shape();
  if (s.size() != 2 || s[1] != dim || s[0] < 1 || size % s[0] != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("KeyQueue::Enqueue: keys have shape ", ShapeString(s), "; expected (N, ",
                     dim, ") with the queue size ", size, " a multiple of N"));
  }
  std::copy(k->array().data().begin(), k->array().data().end(), q.mutable_data().begin() + pointer_ * dim);
  pointer_ = (pointer_ + s[0]) % size;
  return absl::OkStatus();
}

NamedArrays EigenKeyQueue::ExportState() const {
  NamedArrays state;
  state["queue"] = keys_->array();
  state["queue_ptr"] = HostArray({1}, {static_cast<float>(pointer_)});
  return state;
}

absl::Status EigenKeyQueue::ImportState(const NamedArrays& state) {
  auto queue = state.find("queue");
  auto ptr = state.find("queue_ptr");
  if (state.size() != 2 || queue == state.end() || ptr == state.end()) {
    return absl::InvalidArgumentError("queue state must hold exactly 'queue' and 'queue_ptr'");
  }
  const HostArray& q = keys_->array();
  if (queue->second.shape() != q.shape() || queue->second.data().size() != q.data().size()) {
    return absl::InvalidArgumentError(absl::StrCat("entry 'queue' has shape ",
                                                   ShapeString(queue->second.shape()),
                                                   " but this queue's is ", ShapeString(q.shape())));
  }
  if (ptr->second.shape() != std::vector<int64_t>{1} || ptr->second.data().size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat("entry 'queue_ptr' has shape ",
                                                   ShapeString(ptr->second.shape()), ", not [1]"));
  }
  const float p = ptr->second.data()[0];
  if (!(p >= 0) || p >= static_cast<float>(q.shape()[0]) || p != std::floor(p)) {
    return absl::InvalidArgumentError(absl::StrCat("queue_ptr ", p, " is not a row index of a ",
                                                   q.shape()[0], "-key queue"));
  }
  keys_->mutable_array() = queue->second;
  pointer_ = static_cast<int64_t>(p);
  return absl::OkStatus();
}

}  // namespace eigen_backend
}  // namespace moco
