#include "moco/core/communicator.h"

namespace moco {
namespace {

class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  absl::Status AllReduceSum(Tensor&) override { return absl::OkStatus(); }
  absl::Status AllReduceAverage(Tensor&) override { return absl::OkStatus(); }
  absl::StatusOr<TensorPtr> AllGather(const TensorPtr& tensor) override { return tensor; }
  absl::Status Broadcast(Tensor&, int root) override {
    if (root != 0) return absl::InvalidArgumentError("Broadcast root must be 0 in world 1");
    return absl::OkStatus();
  }
  absl::Status Barrier() override { return absl::OkStatus(); }
  absl::Status AllReduceSumHost(absl::Span<float>) override { return absl::OkStatus(); }
  absl::StatusOr<std::vector<int64_t>> AllGatherHost(int64_t value) override {
    return std::vector<int64_t>{value};
  }
};

}  // namespace

std::unique_ptr<Communicator> MakeLocalCommunicator() {
  return std::make_unique<LocalCommunicator>();
}

}  // namespace moco
