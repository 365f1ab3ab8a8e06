// SyncBatchNormTrain against torch's own BatchNorm on the concatenation of the ranks' batches:
// outputs, input gradients, the summed weight/bias gradients and the running statistics.
// Ranks are threads joined by host all-reduces (moco/core/in_process_group.h).
#include "backends/torch/sync_batch_norm.h"

#include <torch/torch.h>

#include <vector>

#include "gtest/gtest.h"
#include "moco/core/in_process_group.h"

namespace moco::torch_backend {
namespace {

constexpr double kMomentum = 0.1;
constexpr double kEps = 1e-5;

void ExpectClose(const torch::Tensor& got, const torch::Tensor& want, const char* what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const double scale = want.abs().max().item<double>();
  const double diff = (got - want).abs().max().item<double>();
  EXPECT_LE(diff, 2e-5 * std::max(1.0, scale)) << what << ": max |diff| " << diff;
}

struct RankResult {
  torch::Tensor y, dx, dweight, dbias, running_mean, running_var;
};

// `world` ranks each normalize their consecutive share of x and back-propagate their share of
// the upstream gradient g; `affine` gives the layer a weight and bias. x is N(offset, scale^2)
// plus `rank_shift` times the index of the rank holding the row (ranks with other means).
void CheckAgainstOneBatchNorm(const std::vector<int64_t>& shape, int world, bool affine,
                              double scale = 3, double offset = 1, double rank_shift = 0) {
  torch::manual_seed(3);
  const int64_t c = shape[1];
  const int64_t rows = shape[0] / world;
  std::vector<int64_t> row_shape(shape.size(), 1);
  row_shape[0] = shape[0];
  const torch::Tensor row_rank =
      torch::div(torch::arange(shape[0], torch::kFloat32), static_cast<double>(rows),
                 "floor").view(row_shape);
  const torch::Tensor x = torch::randn(shape) * scale + offset + row_rank * rank_shift;
  const torch::Tensor g = torch::randn(shape);
  const torch::Tensor weight = affine ? torch::rand({c}) + 0.5 : torch::Tensor();
  const torch::Tensor bias = affine ? torch::randn({c}) : torch::Tensor();
  const torch::Tensor mean0 = torch::randn({c}), var0 = torch::rand({c}) + 0.5;

  // The reference: one BatchNorm over the whole batch.
  torch::Tensor x_ref = x.clone().requires_grad_();
  torch::Tensor w_ref = affine ? weight.clone().requires_grad_() : torch::Tensor();
  torch::Tensor b_ref = affine ? bias.clone().requires_grad_() : torch::Tensor();
  torch::Tensor rm_ref = mean0.clone(), rv_ref = var0.clone();
  const torch::Tensor y_ref = torch::batch_norm(x_ref, w_ref, b_ref, rm_ref, rv_ref,
                                                /*training=*/true, kMomentum, kEps, false);
  (y_ref * g).sum().backward();

  std::vector<RankResult> results(static_cast<size_t>(world));
  InProcessGroup group(world);
  RunOnRanks(group, [&](Communicator& comm) {
    const int r = comm.rank();
    torch::Tensor xr = x.narrow(0, r * rows, rows).clone().requires_grad_();
    torch::Tensor wr = affine ? weight.clone().requires_grad_() : torch::Tensor();
    torch::Tensor br = affine ? bias.clone().requires_grad_() : torch::Tensor();
    RankResult& out = results[static_cast<size_t>(r)];
    out.running_mean = mean0.clone();
    out.running_var = var0.clone();
    out.y = SyncBatchNormTrain(xr, wr, br, out.running_mean, out.running_var, kMomentum, kEps,
                               comm);
    (out.y * g.narrow(0, r * rows, rows)).sum().backward();
    out.dx = xr.grad();
    if (affine) {
      out.dweight = wr.grad();
      out.dbias = br.grad();
    }
  });

  torch::Tensor dweight_sum = torch::zeros({c}), dbias_sum = torch::zeros({c});
  for (int r = 0; r < world; ++r) {
    const RankResult& got = results[static_cast<size_t>(r)];
    ExpectClose(got.y.detach(), y_ref.detach().narrow(0, r * rows, rows), "output");
    ExpectClose(got.dx, x_ref.grad().narrow(0, r * rows, rows), "input gradient");
    ExpectClose(got.running_mean, rm_ref, "running_mean");
    ExpectClose(got.running_var, rv_ref, "running_var");
    if (affine) {
      dweight_sum += got.dweight;
      dbias_sum += got.dbias;
    }
  }
  if (affine) {
    ExpectClose(dweight_sum, w_ref.grad(), "weight gradient summed over ranks");
    ExpectClose(dbias_sum, b_ref.grad(), "bias gradient summed over ranks");
  }
}

TEST(SyncBatchNormTest, TwoRanksNormalizeOverTheUnionOfTheirBatches4d) {
  CheckAgainstOneBatchNorm({8, 3, 5, 4}, /*world=*/2, /*affine=*/true);
}

TEST(SyncBatchNormTest, ThreeRanksWithoutAffineParameters2d) {
  CheckAgainstOneBatchNorm({12, 7}, /*world=*/3, /*affine=*/false);
}

TEST(SyncBatchNormTest, LargeMeansAndRanksWithDifferentMeans) {
  // Mean 200 times the spread (not more: the float input itself then holds few digits of
  // x - mean): a float sum of squares minus the squared sum would lose most digits of the
  // variance; each rank centering on its own mean, then combining, loses none.
  CheckAgainstOneBatchNorm({8, 3, 5, 4}, /*world=*/2, /*affine=*/true, /*scale=*/0.5,
                           /*offset=*/100, /*rank_shift=*/2);
}

TEST(SyncBatchNormTest, OneRankIsPlainBatchNorm) {
  CheckAgainstOneBatchNorm({6, 4, 3, 3}, /*world=*/1, /*affine=*/true);
}

// Claims world 2 and fails every collective.
class FailingCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 2; }
  absl::Status AllReduceSum(Tensor&) override { return Lost(); }
  absl::Status AllReduceAverage(Tensor&) override { return Lost(); }
  absl::StatusOr<TensorPtr> AllGather(const TensorPtr&) override { return Lost(); }
  absl::Status Broadcast(Tensor&, int) override { return Lost(); }
  absl::Status Barrier() override { return Lost(); }
  absl::Status AllReduceSumHost(absl::Span<float>) override { return Lost(); }
  absl::StatusOr<std::vector<int64_t>> AllGatherHost(int64_t) override { return Lost(); }
  absl::StatusOr<std::vector<float>> AllGatherHostFloats(absl::Span<const float>) override {
    return Lost();
  }

 private:
  static absl::Status Lost() { return absl::UnavailableError("rank 1 is gone"); }
};

TEST(SyncBatchNormTest, AFailedCollectiveThrowsNamingIt) {
  FailingCommunicator comm;
  torch::Tensor rm = torch::zeros({2}), rv = torch::ones({2});
  try {
    SyncBatchNormTrain(torch::randn({4, 2}), {}, {}, rm, rv, kMomentum, kEps, comm);
    FAIL() << "expected c10::Error";
  } catch (const c10::Error& e) {
    const std::string message = e.what_without_backtrace();
    EXPECT_NE(message.find("all-gather of the channel statistics failed"), std::string::npos)
        << message;
    EXPECT_NE(message.find("rank 1 is gone"), std::string::npos) << message;
  }
  EXPECT_TRUE(torch::equal(rm, torch::zeros({2}))) << "running stats moved despite the failure";
}

}  // namespace
}  // namespace moco::torch_backend
