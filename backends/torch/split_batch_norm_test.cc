#include "backends/torch/split_batch_norm.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <vector>

namespace moco::torch_backend {
namespace {

namespace F = torch::nn::functional;

// Max |a - b|, for readable failure messages.
double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  return (a - b).abs().max().item<double>();
}

struct SplitCase {
  SplitLayout layout;
  int64_t splits;
  int64_t batch;
  int64_t height;
  int64_t width;
};

class SplitBatchNormVsPerGroupTest : public ::testing::TestWithParam<SplitCase> {};

// The split BN's outputs, running statistics and gradients equal those of torch's batch_norm
// run separately on each group (one "GPU" per group), with the running statistics averaged.
TEST_P(SplitBatchNormVsPerGroupTest, MatchesPerGroupFunctionalBatchNorm) {
  const SplitCase c = GetParam();
  const int64_t channels = 3;
  torch::manual_seed(7);
  const torch::Tensor input = torch::randn({c.batch, channels, c.height, c.width}) * 2 + 0.5;
  const torch::Tensor weight0 = torch::rand({channels}) + 0.5;
  const torch::Tensor bias0 = torch::randn({channels});
  const torch::Tensor mean0 = torch::randn({channels}) * 0.1;
  const torch::Tensor var0 = torch::rand({channels}) + 0.5;
  const torch::Tensor upstream = torch::randn({c.batch, channels, c.height, c.width});

  SplitBatchNorm2d bn(channels);
  bn->set_num_splits(c.splits, c.layout);
  bn->train();
  {
    torch::NoGradGuard no_grad;
    bn->weight.copy_(weight0);
    bn->bias.copy_(bias0);
    bn->running_mean.copy_(mean0);
    bn->running_var.copy_(var0);
  }
  torch::Tensor x = input.clone().requires_grad_(true);
  torch::Tensor y = bn->forward(x);
  (y * upstream).sum().backward();

  // Reference: an independent functional batch_norm per group.
  torch::Tensor ref_x = input.clone().requires_grad_(true);
  torch::Tensor ref_w = weight0.clone().requires_grad_(true);
  torch::Tensor ref_b = bias0.clone().requires_grad_(true);
  const int64_t group = c.batch / c.splits;
  std::vector<torch::Tensor> ref_outputs, members;
  torch::Tensor mean_sum = torch::zeros({channels});
  torch::Tensor var_sum = torch::zeros({channels});
  for (int64_t g = 0; g < c.splits; ++g) {
    // Consecutive: samples [g * group, (g + 1) * group). Interleaved: g, g + n, g + 2n, ...
    const torch::Tensor index = c.layout == SplitLayout::kConsecutive
                                    ? torch::arange(g * group, (g + 1) * group)
                                    : torch::arange(g, c.batch, c.splits);
    members.push_back(index);
    torch::Tensor rm = mean0.clone();
    torch::Tensor rv = var0.clone();
    ref_outputs.push_back(F::batch_norm(
        ref_x.index_select(0, index), rm, rv,
        F::BatchNormFuncOptions().weight(ref_w).bias(ref_b).training(true).momentum(0.1).eps(
            1e-5)));
    mean_sum += rm;
    var_sum += rv;
  }
  // Back to sample order: row k of the concatenation is sample order[k].
  const torch::Tensor order = torch::cat(members, 0);
  torch::Tensor ref_y = torch::cat(ref_outputs, 0).index_select(0, torch::argsort(order));
  (ref_y * upstream).sum().backward();

  EXPECT_LT(MaxAbsDiff(y, ref_y), 1e-5);
  EXPECT_LT(MaxAbsDiff(bn->running_mean, mean_sum / c.splits), 1e-6);
  EXPECT_LT(MaxAbsDiff(bn->running_var, var_sum / c.splits), 1e-6);
  EXPECT_LT(MaxAbsDiff(x.grad(), ref_x.grad()), 1e-4);
  EXPECT_LT(MaxAbsDiff(bn->weight.grad(), ref_w.grad()), 1e-4);
  EXPECT_LT(MaxAbsDiff(bn->bias.grad(), ref_b.grad()), 1e-4);
  EXPECT_EQ(bn->num_batches_tracked.item<int64_t>(), 1);

  // Hand computation of group 0, channel 1: normalized with the group's biased variance.
  const torch::Tensor v = input.index_select(0, members[0]).select(1, 1);
  const double mu = v.mean().item<double>();
  const double var_biased = (v - mu).pow(2).mean().item<double>();
  const double expected = (input[0][1][0][0].item<double>() - mu) / std::sqrt(var_biased + 1e-5) *
                              weight0[1].item<double>() +
                          bias0[1].item<double>();
  EXPECT_NEAR(y[0][1][0][0].item<double>(), expected, 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Splits, SplitBatchNormVsPerGroupTest,
                         ::testing::Values(SplitCase{SplitLayout::kConsecutive, 1, 8, 5, 7},
                                           SplitCase{SplitLayout::kConsecutive, 2, 8, 5, 7},
                                           SplitCase{SplitLayout::kConsecutive, 4, 8, 3, 5},
                                           SplitCase{SplitLayout::kConsecutive, 4, 12, 1, 3},
                                           SplitCase{SplitLayout::kConsecutive, 2, 6, 7, 1},
                                           SplitCase{SplitLayout::kInterleaved, 1, 8, 5, 7},
                                           SplitCase{SplitLayout::kInterleaved, 2, 8, 5, 7},
                                           SplitCase{SplitLayout::kInterleaved, 4, 8, 3, 5},
                                           SplitCase{SplitLayout::kInterleaved, 4, 12, 1, 3},
                                           SplitCase{SplitLayout::kInterleaved, 2, 6, 7, 1}));

// The interleaved path's output is not an autograd view: the in-place ReLU and residual add a
// ResNet applies to it must give the same gradients as out-of-place ops on plain per-group BN.
TEST(SplitBatchNormTest, InterleavedOutputSupportsInPlaceOps) {
  torch::manual_seed(11);
  const torch::Tensor input = torch::randn({8, 4, 3, 3});
  const torch::Tensor residual = torch::randn({8, 4, 3, 3});
  const torch::Tensor upstream = torch::randn({8, 4, 3, 3});
  SplitBatchNorm2d bn(4);
  bn->set_num_splits(2, SplitLayout::kInterleaved);
  torch::Tensor x = input.clone().requires_grad_(true);
  torch::Tensor y = bn->forward(x);
  y += residual;
  y.relu_();
  (y * upstream).sum().backward();

  SplitBatchNorm2d ref(4);
  ref->set_num_splits(1);
  torch::Tensor ref_x = input.clone().requires_grad_(true);
  // Interleaved groups of 2 = even and odd samples.
  const torch::Tensor even = torch::arange(0, 8, 2), odd = torch::arange(1, 8, 2);
  torch::Tensor ref_y = torch::zeros({8, 4, 3, 3});
  ref_y = ref_y.index_put({even}, ref->forward(ref_x.index_select(0, even)));
  ref_y = ref_y.index_put({odd}, ref->forward(ref_x.index_select(0, odd)));
  ref_y = torch::relu(ref_y + residual);
  (ref_y * upstream).sum().backward();
  EXPECT_LT(MaxAbsDiff(y, ref_y), 1e-5);
  EXPECT_LT(MaxAbsDiff(x.grad(), ref_x.grad()), 1e-4);
  EXPECT_LT(MaxAbsDiff(bn->weight.grad(), ref->weight.grad()), 1e-4);
  EXPECT_LT(MaxAbsDiff(bn->bias.grad(), ref->bias.grad()), 1e-4);
}

// The running statistics follow torch's rule with the unbiased variance, checked by hand:
// with 2 splits, running = 0.9 * running + 0.1 * mean over groups of (mean_g, unbiased var_g).
TEST(SplitBatchNormTest, RunningStatsUseUnbiasedVarianceAveragedOverGroups) {
  SplitBatchNorm2d bn(1);
  bn->set_num_splits(2);
  // Group 0: values {0, 2}; group 1: values {1, 5}. Each sample is 1x1x2.
  const torch::Tensor x = torch::tensor({0.f, 2.f, 1.f, 5.f}).view({2, 1, 1, 2});
  bn->forward(x);
  // means 1 and 3 -> 2; unbiased variances 2 and 8 -> 5.
  EXPECT_NEAR(bn->running_mean.item<double>(), 0.1 * 2.0, 1e-6);
  EXPECT_NEAR(bn->running_var.item<double>(), 0.9 * 1.0 + 0.1 * 5.0, 1e-6);
  bn->forward(x);
  EXPECT_NEAR(bn->running_mean.item<double>(), 0.9 * 0.2 + 0.1 * 2.0, 1e-6);
  EXPECT_EQ(bn->num_batches_tracked.item<int64_t>(), 2);
}

// Eval mode normalizes with the running statistics and ignores the split count.
TEST(SplitBatchNormTest, EvalUsesRunningStatsAndIgnoresSplits) {
  SplitBatchNorm2d bn(2);
  bn->set_num_splits(4);
  {
    torch::NoGradGuard no_grad;
    bn->running_mean.copy_(torch::tensor({1.f, -2.f}));
    bn->running_var.copy_(torch::tensor({4.f, 0.25f}));
    bn->weight.copy_(torch::tensor({2.f, 1.f}));
    bn->bias.copy_(torch::tensor({0.5f, 0.f}));
  }
  bn->eval();
  const torch::Tensor x = torch::tensor({3.f, -1.f, 5.f, -2.5f}).view({2, 2, 1, 1});  // N=2 < 4
  const torch::Tensor y = bn->forward(x);
  auto expect = [](double v, double m, double var, double w, double b) {
    return (v - m) / std::sqrt(var + 1e-5) * w + b;
  };
  EXPECT_NEAR(y[0][0][0][0].item<double>(), expect(3, 1, 4, 2, 0.5), 1e-5);
  EXPECT_NEAR(y[0][1][0][0].item<double>(), expect(-1, -2, 0.25, 1, 0), 1e-5);
  EXPECT_NEAR(y[1][0][0][0].item<double>(), expect(5, 1, 4, 2, 0.5), 1e-5);
  EXPECT_NEAR(y[1][1][0][0].item<double>(), expect(-2.5, -2, 0.25, 1, 0), 1e-5);
  EXPECT_NEAR(bn->running_mean[0].item<double>(), 1.0, 0.0);  // untouched
  EXPECT_EQ(bn->num_batches_tracked.item<int64_t>(), 0);
}

TEST(SplitBatchNormTest, NamesAndInitialValuesMatchTorchvision) {
  SplitBatchNorm2d bn(4);
  std::vector<std::string> params, buffers;
  for (const auto& p : bn->named_parameters()) params.push_back(p.key());
  for (const auto& b : bn->named_buffers()) buffers.push_back(b.key());
  EXPECT_EQ(params, (std::vector<std::string>{"weight", "bias"}));
  EXPECT_EQ(buffers,
            (std::vector<std::string>{"running_mean", "running_var", "num_batches_tracked"}));
  EXPECT_TRUE(bn->weight.equal(torch::ones({4})));
  EXPECT_TRUE(bn->bias.equal(torch::zeros({4})));
  EXPECT_TRUE(bn->running_mean.equal(torch::zeros({4})));
  EXPECT_TRUE(bn->running_var.equal(torch::ones({4})));
  EXPECT_EQ(bn->num_batches_tracked.dim(), 0);
  EXPECT_EQ(bn->num_batches_tracked.scalar_type(), torch::kLong);
}

TEST(SplitBatchNormTest, BadInputThrows) {
  SplitBatchNorm2d bn(3);
  bn->set_num_splits(4, SplitLayout::kInterleaved);
  EXPECT_THROW(bn->forward(torch::randn({6, 3, 2, 2})), c10::Error);  // 6 % 4 != 0
  bn->set_num_splits(4);
  EXPECT_THROW(bn->forward(torch::randn({6, 3, 2, 2})), c10::Error);
  EXPECT_THROW(bn->forward(torch::randn({8, 2, 2, 2})), c10::Error);  // wrong channels
  EXPECT_THROW(bn->forward(torch::randn({8, 3, 2})), c10::Error);     // not 4-d
  EXPECT_THROW(bn->forward(torch::randn({4, 3, 1, 1})), c10::Error);  // 1 value per group
  EXPECT_THROW(bn->set_num_splits(0), c10::Error);
}

// clone() (how the key encoder is made) copies parameters, buffers and the split count into
// independent storage.
TEST(SplitBatchNormTest, CloneIsDeepAndKeepsSplits) {
  SplitBatchNorm2d bn(3);
  bn->set_num_splits(2, SplitLayout::kInterleaved);
  bn->forward(torch::randn({4, 3, 2, 2}));
  auto copy = std::dynamic_pointer_cast<SplitBatchNorm2dImpl>(bn->clone());
  ASSERT_NE(copy, nullptr);
  EXPECT_EQ(copy->num_splits(), 2);
  EXPECT_EQ(copy->split_layout(), SplitLayout::kInterleaved);
  EXPECT_TRUE(copy->running_mean.equal(bn->running_mean));
  EXPECT_EQ(copy->num_batches_tracked.item<int64_t>(), 1);
  {
    torch::NoGradGuard no_grad;
    copy->weight.fill_(3);
  }
  EXPECT_TRUE(bn->weight.equal(torch::ones({3})));
}

}  // namespace
}  // namespace moco::torch_backend
