// The online probe under data parallelism: two ranks (threads here, exchanging through an
// in-process all-gather) each give their half of a global batch; both must take the step one
// process takes on the whole batch, bitwise (the stand-in encoder's features are exact).
#include "moco/pretrain/online_probe.h"

#include <cmath>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "moco/core/backend_registry.h"

namespace moco {
namespace {

// Two ranks in one process: only the host float all-gather is implemented (what the probe
// uses); each call waits for both ranks' values.
class ThreadPair {
 public:
  std::vector<float> Exchange(int rank, std::vector<float> mine) {
    std::unique_lock<std::mutex> lock(mu_);
    const int64_t round = round_;
    slots_[rank] = std::move(mine);
    if (++arrived_ == 2) {
      gathered_ = slots_[0];
      gathered_.insert(gathered_.end(), slots_[1].begin(), slots_[1].end());
      arrived_ = 0;
      ++round_;
      done_.notify_all();
    } else {
      done_.wait(lock, [&] { return round_ != round; });
    }
    return gathered_;  // both read it before the next round can start (the next Exchange)
  }

 private:
  std::mutex mu_;
  std::condition_variable done_;
  std::vector<float> slots_[2];
  std::vector<float> gathered_;
  int arrived_ = 0;
  int64_t round_ = 0;
};

class PairCommunicator final : public Communicator {
 public:
  PairCommunicator(ThreadPair& pair, int rank) : pair_(pair), rank_(rank) {}
  int rank() const override { return rank_; }
  int world_size() const override { return 2; }
  absl::StatusOr<std::vector<float>> AllGatherHostFloats(absl::Span<const float> v) override {
    return pair_.Exchange(rank_, std::vector<float>(v.begin(), v.end()));
  }
  absl::Status AllReduceSum(Tensor&) override { return Unused(); }
  absl::Status AllReduceAverage(Tensor&) override { return Unused(); }
  absl::StatusOr<TensorPtr> AllGather(const TensorPtr&) override { return Unused(); }
  absl::Status Broadcast(Tensor&, int) override { return Unused(); }
  absl::Status Barrier() override { return Unused(); }
  absl::Status AllReduceSumHost(absl::Span<float>) override { return Unused(); }
  absl::StatusOr<std::vector<int64_t>> AllGatherHost(int64_t) override { return Unused(); }

 private:
  static absl::Status Unused() { return absl::UnimplementedError("not used by the probe"); }
  ThreadPair& pair_;
  int rank_;
};

// Backbone features = the images flattened (exact); nothing else is used by the probe.
class FlattenEncoder final : public Encoder {
 public:
  explicit FlattenEncoder(Backend& backend) : backend_(backend) {}
  absl::StatusOr<TensorPtr> BackboneFeatures(const Tensor& images) override {
    absl::StatusOr<HostArray> host = images.ToHost();
    if (!host.ok()) return host.status();
    host->Reshape({host->shape()[0], host->numel() / host->shape()[0]});
    return backend_.Upload(*host);
  }
  absl::StatusOr<TensorPtr> Forward(const Tensor&, bool, bool) override { return Unused(); }
  absl::Status Backward(const Tensor&) override { return Unused(); }
  void ZeroGrad() override {}
  absl::Status MomentumUpdateFrom(const Encoder&, float) override { return Unused(); }
  absl::StatusOr<NamedArrays> ExportState() const override { return Unused(); }
  absl::StatusOr<NamedArrays> ExportGradients() const override { return Unused(); }
  absl::Status ImportState(const NamedArrays&) override { return Unused(); }
  int64_t feature_dim() const override { return 6; }
  int64_t backbone_dim() const override { return 6; }

 private:
  static absl::Status Unused() { return absl::UnimplementedError("not used by the probe"); }
  Backend& backend_;
};

constexpr int kClasses = 3;

// Global batch step s: 8 images (1, 2, 3) with varied values; labels mixed over the classes.
HostArray Images(int step) {
  std::vector<float> v(8 * 6);
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(0.37f * i + step) + 0.1f * (i % 5);
  return HostArray({8, 1, 2, 3}, std::move(v));
}
std::vector<int64_t> Labels(int step) {
  std::vector<int64_t> l(8);
  for (int i = 0; i < 8; ++i) l[i] = (i * 2 + step) % kClasses;
  return l;
}

// Rows [begin, begin + n) of a batch.
HostArray Rows(const HostArray& a, int64_t begin, int64_t n) {
  const int64_t row = a.numel() / a.shape()[0];
  std::vector<int64_t> shape = a.shape();
  shape[0] = n;
  return HostArray(shape, std::vector<float>(a.data().begin() + begin * row,
                                             a.data().begin() + (begin + n) * row));
}

std::unique_ptr<OnlineProbe> NewProbe() {
  OnlineProbeConfig config;
  config.set_enabled(true);
  config.set_lr(0.5f);
  config.set_weight_decay(1e-3f);
  auto probe = OnlineProbe::Create(config, 6, kClasses, /*seed=*/5);
  EXPECT_TRUE(probe.ok()) << probe.status();
  return probe.ok() ? *std::move(probe) : nullptr;
}

// Three steps of `probe` on rank `rank`'s half (rank -1: the whole batch, world 1).
absl::Status TrainSteps(OnlineProbe& probe, Backend& backend, Communicator& comm, int rank) {
  FlattenEncoder encoder(backend);
  for (int step = 0; step < 3; ++step) {
    HostArray images = Images(step);
    std::vector<int64_t> labels = Labels(step);
    if (rank >= 0) {
      images = Rows(images, 4 * rank, 4);
      labels = std::vector<int64_t>(labels.begin() + 4 * rank, labels.begin() + 4 * rank + 4);
    }
    absl::StatusOr<TensorPtr> uploaded = backend.Upload(images);
    if (!uploaded.ok()) return uploaded.status();
    absl::Status s = probe.Train(encoder, **uploaded, labels, comm);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

TEST(OnlineProbeTest, TwoRanksTakeTheStepOneProcessTakesOnTheGlobalBatch) {
  auto backend = CreateBackend("eigen", BackendOptions());
  ASSERT_TRUE(backend.ok()) << backend.status();
  std::unique_ptr<OnlineProbe> alone = NewProbe();
  std::unique_ptr<Communicator> local = MakeLocalCommunicator();
  ASSERT_TRUE(TrainSteps(*alone, **backend, *local, -1).ok());

  ThreadPair pair;
  std::unique_ptr<OnlineProbe> ranks[2] = {NewProbe(), NewProbe()};
  absl::Status status[2];
  std::thread threads[2];
  for (int r = 0; r < 2; ++r) {
    threads[r] = std::thread([&, r] {
      PairCommunicator comm(pair, r);
      auto own_backend = CreateBackend("eigen", BackendOptions());  // one per rank, as in DP
      status[r] = own_backend.ok() ? TrainSteps(*ranks[r], **own_backend, comm, r)
                                   : own_backend.status();
    });
  }
  for (auto& t : threads) t.join();
  // Every entry, the epoch's training counts (global, not per rank) included.
  const NamedArrays expected = alone->ExportState();
  for (int r = 0; r < 2; ++r) {
    ASSERT_TRUE(status[r].ok()) << "rank " << r << ": " << status[r];
    const NamedArrays got = ranks[r]->ExportState();
    ASSERT_EQ(got.size(), expected.size());
    for (const auto& [name, array] : expected) {
      ASSERT_TRUE(got.count(name)) << name;
      EXPECT_EQ(got.at(name).data(), array.data()) << "rank " << r << ": " << name;
    }
  }
}

}  // namespace
}  // namespace moco
