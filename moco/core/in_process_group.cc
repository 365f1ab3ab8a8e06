#include "moco/core/in_process_group.h"

#include <thread>

#include "glog/logging.h"

namespace moco {
namespace {

class InProcessCommunicator final : public Communicator {
 public:
  InProcessCommunicator(InProcessGroup& group, int rank) : group_(group), rank_(rank) {}
  int rank() const override { return rank_; }
  int world_size() const override { return group_.world_size(); }
  absl::Status AllReduceSum(Tensor&) override { return Unsupported(); }
  absl::Status AllReduceAverage(Tensor&) override { return Unsupported(); }
  absl::StatusOr<TensorPtr> AllGather(const TensorPtr&) override { return Unsupported(); }
  absl::Status Broadcast(Tensor&, int) override { return Unsupported(); }
  absl::Status Barrier() override {
    group_.AllReduceSum(rank_, {});
    return absl::OkStatus();
  }
  absl::Status AllReduceSumHost(absl::Span<float> values) override {
    std::vector<double> wide(values.begin(), values.end());
    group_.AllReduceSum(rank_, absl::MakeSpan(wide));
    for (size_t i = 0; i < wide.size(); ++i) values[i] = static_cast<float>(wide[i]);
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<int64_t>> AllGatherHost(int64_t) override { return Unsupported(); }

 private:
  static absl::Status Unsupported() {
    return absl::UnimplementedError("InProcessGroup offers host all-reduces only");
  }
  InProcessGroup& group_;
  const int rank_;
};

}  // namespace

InProcessGroup::InProcessGroup(int world_size)
    : world_size_(world_size), slots_(static_cast<size_t>(world_size)) {
  CHECK_GE(world_size, 1);
}

std::unique_ptr<Communicator> InProcessGroup::Endpoint(int rank) {
  CHECK(rank >= 0 && rank < world_size_);
  return std::make_unique<InProcessCommunicator>(*this, rank);
}

void InProcessGroup::Barrier() {
  std::unique_lock<std::mutex> lock(mu_);
  const int64_t generation = generation_;
  if (++arrived_ == world_size_) {
    arrived_ = 0;
    ++generation_;
    cv_.notify_all();
    return;
  }
  cv_.wait(lock, [&] { return generation_ != generation; });
}

void InProcessGroup::AllReduceSum(int rank, absl::Span<double> values) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    slots_[static_cast<size_t>(rank)].assign(values.begin(), values.end());
  }
  Barrier();  // every contribution is in
  std::vector<double> sum(values.size(), 0.0);
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const std::vector<double>& slot : slots_) {
      CHECK_EQ(slot.size(), values.size()) << "ranks all-reduce different lengths";
      for (size_t i = 0; i < sum.size(); ++i) sum[i] += slot[i];
    }
  }
  Barrier();  // every rank has read the slots before any rank overwrites its own
  std::copy(sum.begin(), sum.end(), values.begin());
}

void RunOnRanks(InProcessGroup& group, const std::function<void(Communicator&)>& fn) {
  std::vector<std::unique_ptr<Communicator>> endpoints;
  for (int r = 0; r < group.world_size(); ++r) endpoints.push_back(group.Endpoint(r));
  std::vector<std::thread> threads;
  for (int r = 0; r < group.world_size(); ++r) {
    threads.emplace_back([&fn, &endpoints, r] { fn(*endpoints[static_cast<size_t>(r)]); });
  }
  for (std::thread& t : threads) t.join();
}

}  // namespace moco
