#include "backends/torch/torch_gradient_buckets.h"

#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "backends/torch/torch_tensor.h"
#include "moco/core/status_macros.h"

namespace moco::torch_backend {

std::vector<std::vector<int>> AssignGradientBuckets(const std::vector<int64_t>& bytes,
                                                    int64_t bucket_bytes) {
  constexpr int64_t kFirstBucketCap = int64_t{1} << 20;
  std::vector<std::vector<int>> buckets;
  int64_t filled = 0;
  for (int i = static_cast<int>(bytes.size()) - 1; i >= 0; --i) {
    // While only the first bucket is open, its smaller cap applies.
    const int64_t cap = buckets.size() == 1 ? std::min(kFirstBucketCap, bucket_bytes)
                                            : bucket_bytes;
    if (buckets.empty() || (filled > 0 && filled + bytes[i] > cap)) {
      buckets.emplace_back();
      filled = 0;
    }
    buckets.back().push_back(i);
    filled += bytes[i];
  }
  return buckets;
}

struct BucketedGradientAverager::State {
  struct Slot {
    torch::Tensor param;
    int64_t offset = 0;  // in the bucket, elements
    bool ready = false;  // its final gradient is in the bucket
  };
  struct Bucket {
    std::vector<Slot> slots;
    torch::Tensor flat;  // float32, the slots' gradients back to back
    int pending = 0;     // slots not yet ready
    std::unique_ptr<PendingCollective> work;
  };

  Communicator* communicator = nullptr;
  std::vector<Bucket> buckets;
  // param_index -> (bucket, slot) for the hooks.
  std::vector<std::pair<int, int>> where;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators;  // keeps the hooks alive
  bool armed = false;
  int next_to_start = 0;
  int started_in_backward = 0;
  absl::Status error;

  void CopyIn(Slot& slot, torch::Tensor& flat) {
    torch::Tensor dst = flat.narrow(0, slot.offset, slot.param.numel());
    const torch::Tensor& grad = slot.param.grad();
    if (grad.defined()) {
      dst.copy_(grad.reshape({-1}));
    } else {
      dst.zero_();
    }
    slot.ready = true;
  }

  // Starts every bucket from next_to_start on that is complete, in order.
  void StartReady() {
    while (error.ok() && next_to_start < static_cast<int>(buckets.size()) &&
           buckets[next_to_start].pending == 0) {
      Bucket& b = buckets[next_to_start];
      TensorPtr wrapped = Wrap(b.flat);
      absl::StatusOr<std::unique_ptr<PendingCollective>> work =
          communicator->StartAllReduceSum(*wrapped);
      if (!work.ok()) {
        error = work.status();
        return;
      }
      b.work = std::move(*work);
      ++next_to_start;
    }
  }

  void OnGradientReady(int param_index) {
    if (!armed || !error.ok()) return;
    auto [bi, si] = where[param_index];
    Bucket& b = buckets[bi];
    Slot& slot = b.slots[si];
    if (slot.ready) return;
    torch::NoGradGuard no_grad;
    CopyIn(slot, b.flat);
    if (--b.pending == 0) {
      const int before = next_to_start;
      StartReady();
      started_in_backward += next_to_start - before;
    }
  }
};

absl::StatusOr<std::unique_ptr<BucketedGradientAverager>> BucketedGradientAverager::Create(
    TorchEncoder& encoder, Communicator& communicator, int64_t bucket_bytes) {
  if (bucket_bytes <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("gradient bucket size must be > 0 bytes (got ", bucket_bytes, ")"));
  }
  return GuardTorch("BucketedGradientAverager::Create",
                    [&]() -> absl::StatusOr<std::unique_ptr<BucketedGradientAverager>> {
    auto state = std::make_shared<State>();
    state->communicator = &communicator;
    std::vector<torch::Tensor> params;
    for (const torch::Tensor& p : encoder.module()->parameters()) {
      if (p.requires_grad()) params.push_back(p);
    }
    std::vector<int64_t> bytes;
    for (const torch::Tensor& p : params) bytes.push_back(p.numel() * 4);
    const std::vector<std::vector<int>> assignment = AssignGradientBuckets(bytes, bucket_bytes);
    state->where.resize(params.size());
    for (size_t bi = 0; bi < assignment.size(); ++bi) {
      State::Bucket bucket;
      int64_t offset = 0;
      for (int index : assignment[bi]) {
        state->where[index] = {static_cast<int>(bi), static_cast<int>(bucket.slots.size())};
        bucket.slots.push_back(State::Slot{params[index], offset, false});
        offset += params[index].numel();
      }
      bucket.flat = torch::zeros({offset}, params[assignment[bi][0]].options()
                                               .dtype(torch::kFloat32)
                                               .requires_grad(false));
      state->buckets.push_back(std::move(bucket));
    }
    std::weak_ptr<State> weak = state;
    for (size_t i = 0; i < params.size(); ++i) {
      std::shared_ptr<torch::autograd::Node> accumulator =
          torch::autograd::impl::grad_accumulator(params[i]);
      accumulator->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
          [weak, i](const torch::autograd::variable_list& outputs,
                    const torch::autograd::variable_list&) {
            if (std::shared_ptr<State> s = weak.lock()) s->OnGradientReady(static_cast<int>(i));
            return outputs;
          }));
      state->accumulators.push_back(std::move(accumulator));
    }
    return std::unique_ptr<BucketedGradientAverager>(new BucketedGradientAverager(state));
  });
}

BucketedGradientAverager::~BucketedGradientAverager() { state_->armed = false; }

absl::Status BucketedGradientAverager::BeforeLastBackward() {
  State& s = *state_;
  if (s.next_to_start != 0 || s.armed) {
    return absl::FailedPreconditionError(
        "BucketedGradientAverager: BeforeLastBackward called twice without Finish");
  }
  for (State::Bucket& b : s.buckets) {
    b.pending = static_cast<int>(b.slots.size());
    for (State::Slot& slot : b.slots) slot.ready = false;
  }
  s.started_in_backward = 0;
  s.error = absl::OkStatus();
  s.armed = true;
  return absl::OkStatus();
}

absl::Status BucketedGradientAverager::Finish() {
  State& s = *state_;
  s.armed = false;
  return GuardTorch("BucketedGradientAverager::Finish", [&]() -> absl::Status {
    torch::NoGradGuard no_grad;
    // What the backward did not reach, then every bucket not yet started, in order.
    for (State::Bucket& b : s.buckets) {
      for (State::Slot& slot : b.slots) {
        if (!slot.ready) {
          s.CopyIn(slot, b.flat);
          --b.pending;
        }
      }
    }
    s.StartReady();
    absl::Status status = s.error;
    const double world = static_cast<double>(s.communicator->world_size());
    for (State::Bucket& b : s.buckets) {
      if (b.work == nullptr) continue;
      absl::Status waited = b.work->Wait();
      b.work.reset();
      if (status.ok()) status = waited;
      if (!status.ok()) continue;
      b.flat.div_(world);
      for (State::Slot& slot : b.slots) {
        if (!slot.param.grad().defined()) continue;  // no gradient anywhere: stays without one
        slot.param.mutable_grad().copy_(
            b.flat.narrow(0, slot.offset, slot.param.numel()).view(slot.param.sizes()));
      }
    }
    s.next_to_start = 0;
    return status;
  });
}

int BucketedGradientAverager::buckets_started_in_backward() const {
  return state_->started_in_backward;
}
int BucketedGradientAverager::bucket_count() const {
  return static_cast<int>(state_->buckets.size());
}

}  // namespace moco::torch_backend
