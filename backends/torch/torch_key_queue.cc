#include "backends/torch/torch_key_queue.h"

#include "absl/strings/str_cat.h"
#include "moco/core/status_macros.h"

namespace moco::torch_backend {
namespace {

torch::Tensor RandomUnitRows(int64_t size, int64_t dim, uint64_t seed,
                             const torch::Device& device) {
  auto generator = at::detail::createCPUGenerator(seed);
  torch::Tensor q = at::randn({size, dim}, generator, torch::TensorOptions(torch::kFloat32));
  q = torch::nn::functional::normalize(q, torch::nn::functional::NormalizeFuncOptions().dim(1));
  return q.to(device);
}

}  // namespace

TorchKeyQueue::TorchKeyQueue(int64_t size, int64_t dim, uint64_t seed,
                             const torch::Device& device)
    : keys_(RandomUnitRows(size, dim, seed, device)) {}

absl::Status TorchKeyQueue::Enqueue(const Tensor& keys) {
  ASSIGN_OR_RETURN(torch::Tensor k, Unwrap(keys));
  const int64_t size = keys_.tensor().size(0);
  if (k.dim() != 2 || k.size(1) != keys_.tensor().size(1) || size % k.size(0) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "KeyQueue::Enqueue: keys of shape [", k.size(0), ", ", k.dim() == 2 ? k.size(1) : -1,
        "] do not fit a queue of ", size, " x ", keys_.tensor().size(1),
        " (the queue size must be a multiple of the batch)"));
  }
  return GuardTorch("KeyQueue::Enqueue", [&]() -> absl::Status {
    torch::NoGradGuard no_grad;
    keys_.tensor().narrow(0, pointer_, k.size(0)).copy_(k);
    pointer_ = (pointer_ + k.size(0)) % size;
    return absl::OkStatus();
  });
}

NamedArrays TorchKeyQueue::ExportState() const {
  NamedArrays state;
  state["queue"] = ToHostArray(keys_.tensor());
  state["queue_ptr"] = HostArray({1}, {static_cast<float>(pointer_)});
  return state;
}

absl::Status TorchKeyQueue::ImportState(const NamedArrays& state) {
  auto queue = state.find("queue");
  auto ptr = state.find("queue_ptr");
  if (queue == state.end() || ptr == state.end() || state.size() != 2) {
    return absl::InvalidArgumentError("queue state must hold exactly 'queue' and 'queue_ptr'");
  }
  const std::vector<int64_t> expected = keys_.tensor().sizes().vec();
  if (queue->second.shape() != expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        "queue has shape [", queue->second.shape().size() == 2 ? queue->second.shape()[0] : -1, ", ",
        queue->second.shape().size() == 2 ? queue->second.shape()[1] : -1, "] but this run's is [",
        expected[0], ", ", expected[1], "] (moco.queue_size x model.feature_dim)"));
  }
  const float p = ptr->second.numel() == 1 ? ptr->second.data()[0] : -1;
  if (p < 0 || p >= expected[0] || p != static_cast<int64_t>(p)) {
    return absl::InvalidArgumentError(absl::StrCat("queue_ptr ", p, " is not a row index"));
  }
  return GuardTorch("KeyQueue::ImportState", [&]() -> absl::Status {
    torch::NoGradGuard no_grad;
    keys_.tensor().copy_(FromHostArray(queue->second, keys_.tensor().device()));
    pointer_ = static_cast<int64_t>(p);
    return absl::OkStatus();
  });
}

}  // namespace moco::torch_backend
