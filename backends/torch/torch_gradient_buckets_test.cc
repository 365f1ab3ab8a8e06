// BucketedGradientAverager against the plain gradients of the same backward. The communicator
// plays world 2 with a peer whose gradients equal ours and finishes every all-reduce only when
// waited on (it doubles the bucket then), so the mean must come back bit for bit equal to the
// local gradient, and a bucket that is copied back before its Wait, or copied to the wrong
// parameter, shows. The real two-process check is //tests:data_parallel_test.
#include "backends/torch/torch_gradient_buckets.h"

#include <torch/torch.h>

#include <string>
#include <vector>

#include "backends/torch/torch_tensor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moco::torch_backend {
namespace {

using ::testing::ElementsAre;

TEST(AssignGradientBucketsTest, ReverseOrderFirstBucketSmallOversizedAlone) {
  const int64_t mib = int64_t{1} << 20;
  // Reverse order: 3 opens the small first bucket, 2 (2 MiB) does not fit its 1 MiB cap.
  EXPECT_THAT(AssignGradientBuckets({4, 4, 2 * mib, 8}, 3 * mib),
              ElementsAre(ElementsAre(3), ElementsAre(2, 1, 0)));
  // A parameter larger than the cap gets a bucket of its own; the next one starts anew.
  EXPECT_THAT(AssignGradientBuckets({mib, 5 * mib, mib, mib / 2, mib / 2}, 2 * mib),
              ElementsAre(ElementsAre(4, 3), ElementsAre(2), ElementsAre(1), ElementsAre(0)));
  EXPECT_THAT(AssignGradientBuckets({10, 10, 10}, 1 << 30),
              ElementsAre(ElementsAre(2, 1, 0)));
}

// World 2 with an identical peer: StartAllReduceSum returns at once; Wait doubles the bucket.
class MirrorPeerCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 2; }
  absl::StatusOr<std::unique_ptr<PendingCollective>> StartAllReduceSum(Tensor& tensor) override {
    ++started;
    if (fail_at_start == started) return absl::UnavailableError("rank 1 exited");
    return std::unique_ptr<PendingCollective>(new Doubling(*Unwrap(tensor)));
  }
  absl::Status AllReduceSum(Tensor&) override { return Unexpected(); }
  absl::Status AllReduceAverage(Tensor&) override { return Unexpected(); }
  absl::StatusOr<TensorPtr> AllGather(const TensorPtr&) override { return Unexpected(); }
  absl::Status Broadcast(Tensor&, int) override { return Unexpected(); }
  absl::Status Barrier() override { return Unexpected(); }
  absl::Status AllReduceSumHost(absl::Span<float>) override { return Unexpected(); }
  absl::StatusOr<std::vector<int64_t>> AllGatherHost(int64_t) override { return Unexpected(); }

  int started = 0;
  int fail_at_start = -1;

 private:
  class Doubling final : public PendingCollective {
   public:
    explicit Doubling(torch::Tensor t) : t_(std::move(t)) {}
    absl::Status Wait() override {
      t_.mul_(2);
      return absl::OkStatus();
    }

   private:
    torch::Tensor t_;
  };
  static absl::Status Unexpected() { return absl::InternalError("unexpected collective"); }
};

std::unique_ptr<TorchEncoder> MakeEncoder() {
  ModelConfig model;
  model.set_arch("resnet18");
  model.set_cifar_stem(true);
  model.set_width_multiplier(0.25);
  model.set_in_channels(1);
  model.set_feature_dim(16);
  model.set_mlp_head(true);
  absl::StatusOr<std::unique_ptr<TorchEncoder>> e =
      TorchEncoder::Create(model, 7, EncoderOptions(), torch::Device("cpu"));
  CHECK(e.ok()) << e.status();
  return std::move(*e);
}

// d(sum(w * output))/d(params) of one recorded forward, accumulated into p.grad.
void Backward(TorchEncoder& encoder, const torch::Tensor& images, const torch::Tensor& w) {
  TensorPtr out = *encoder.Forward(*Wrap(images), /*train_bn=*/true, /*record=*/true);
  ASSERT_TRUE(encoder.Backward(*Wrap(w)).ok());
}

std::vector<torch::Tensor> Gradients(TorchEncoder& encoder) {
  std::vector<torch::Tensor> grads;
  for (const torch::Tensor& p : encoder.module()->parameters()) grads.push_back(p.grad().clone());
  return grads;
}

TEST(BucketedGradientAveragerTest, OverlapsAndReturnsTheMeanOfTwoBackwardPasses) {
  torch::manual_seed(1);
  const torch::Tensor x1 = torch::randn({4, 1, 16, 16}), x2 = torch::randn({4, 1, 16, 16});
  const torch::Tensor w1 = torch::randn({4, 16}), w2 = torch::randn({4, 16});
  // Reference: two accumulated backward passes, no averaging.
  std::unique_ptr<TorchEncoder> ref = MakeEncoder();
  ref->ZeroGrad();
  Backward(*ref, x1, w1);
  Backward(*ref, x2, w2);
  const std::vector<torch::Tensor> expected = Gradients(*ref);

  std::unique_ptr<TorchEncoder> encoder = MakeEncoder();
  MirrorPeerCommunicator comm;
  // 16 KiB buckets: many of them for this ~0.7 MB network.
  auto averager = *BucketedGradientAverager::Create(*encoder, comm, 16 << 10);
  ASSERT_GT(averager->bucket_count(), 5);
  for (int step = 0; step < 2; ++step) {  // the second step reuses the hooks and buckets
    encoder->ZeroGrad();
    comm.started = 0;
    Backward(*encoder, x1, w1);  // not armed: no bucket starts
    EXPECT_EQ(comm.started, 0);
    ASSERT_TRUE(averager->BeforeLastBackward().ok());
    Backward(*encoder, x2, w2);
    // Every bucket filled during the backward and started before it returned.
    EXPECT_EQ(averager->buckets_started_in_backward(), averager->bucket_count());
    EXPECT_EQ(comm.started, averager->bucket_count());
    ASSERT_TRUE(averager->Finish().ok());
    const std::vector<torch::Tensor> got = Gradients(*encoder);
    ASSERT_EQ(got.size(), expected.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_TRUE(torch::equal(got[i], expected[i])) << "parameter " << i << " step " << step;
    }
  }
}

TEST(BucketedGradientAveragerTest, AFailedStartIsReportedByFinish) {
  std::unique_ptr<TorchEncoder> encoder = MakeEncoder();
  MirrorPeerCommunicator comm;
  comm.fail_at_start = 2;
  auto averager = *BucketedGradientAverager::Create(*encoder, comm, 16 << 10);
  encoder->ZeroGrad();
  ASSERT_TRUE(averager->BeforeLastBackward().ok());
  Backward(*encoder, torch::randn({4, 1, 16, 16}), torch::randn({4, 16}));
  absl::Status status = averager->Finish();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("rank 1 exited"));
  EXPECT_EQ(comm.started, 2);  // nothing started after the failure
}

TEST(BucketedGradientAveragerTest, RefusesANonPositiveBucketSize) {
  std::unique_ptr<TorchEncoder> encoder = MakeEncoder();
  MirrorPeerCommunicator comm;
  EXPECT_EQ(BucketedGradientAverager::Create(*encoder, comm, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace moco::torch_backend
