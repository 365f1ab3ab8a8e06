#include "backends/torch/consecutive_batch_norm.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

namespace moco::torch_backend {
namespace {

constexpr double kMomentum = 0.1;
constexpr double kEps = 1e-5;

struct Case {
  torch::ScalarType dtype;
  bool channels_last;
  int64_t splits;
  int64_t batch, channels, height, width;
};

std::string Name(const ::testing::TestParamInfo<Case>& info) {
  const Case& c = info.param;
  return std::string(c.dtype == torch::kBFloat16 ? "bf16" : "fp32") +
         (c.channels_last ? "_cl" : "_nchw") + "_n" + std::to_string(c.splits) + "_" +
         std::to_string(c.batch) + "x" + std::to_string(c.channels) + "x" +
         std::to_string(c.height) + "x" + std::to_string(c.width);
}

struct Result {
  torch::Tensor y, grad_x, grad_w, grad_b, means, vars;
};

// The plain way this function replaces: split, one torch::batch_norm per group, cat, with
// autograd summing the groups' weight gradients.
Result SplitAndCat(const torch::Tensor& input, const torch::Tensor& w0, const torch::Tensor& b0,
                   const torch::Tensor& means0, const torch::Tensor& vars0,
                   const torch::Tensor& upstream, int64_t n) {
  torch::Tensor x = input.clone().requires_grad_(true);
  torch::Tensor w = w0.clone().requires_grad_(true);
  torch::Tensor b = b0.clone().requires_grad_(true);
  Result r;
  r.means = means0.clone();
  r.vars = vars0.clone();
  const std::vector<torch::Tensor> groups = x.split(x.size(0) / n, 0);
  const std::vector<torch::Tensor> means = r.means.chunk(n), vars = r.vars.chunk(n);
  std::vector<torch::Tensor> outputs;
  for (int64_t g = 0; g < n; ++g) {
    outputs.push_back(torch::batch_norm(groups[g], w, b, means[g], vars[g], /*training=*/true,
                                        kMomentum, kEps, /*cudnn_enabled=*/true));
  }
  r.y = torch::cat(outputs, 0);
  r.y.backward(upstream);
  r.grad_x = x.grad();
  r.grad_w = w.grad();
  r.grad_b = b.grad();
  return r;
}

Result InPlace(const torch::Tensor& input, const torch::Tensor& w0, const torch::Tensor& b0,
               const torch::Tensor& means0, const torch::Tensor& vars0,
               const torch::Tensor& upstream, int64_t n) {
  torch::Tensor x = input.clone().requires_grad_(true);
  torch::Tensor w = w0.clone().requires_grad_(true);
  torch::Tensor b = b0.clone().requires_grad_(true);
  Result r;
  r.means = means0.clone();
  r.vars = vars0.clone();
  r.y = ConsecutiveGroupBatchNorm(x, w, b, r.means, r.vars, n, kMomentum, kEps);
  r.y.backward(upstream);
  r.grad_x = x.grad();
  r.grad_w = w.grad();
  r.grad_b = b.grad();
  return r;
}

class ConsecutiveBatchNormTest : public ::testing::TestWithParam<Case> {};

// Bitwise equal to split + batch_norm + cat: outputs, input/weight/bias gradients and every
// group's running statistics, in fp32 and in bf16 activations with fp32 parameters (autocast's
// mix), NCHW and channels-last.
TEST_P(ConsecutiveBatchNormTest, BitwiseEqualToSplitAndCat) {
  const Case c = GetParam();
  torch::manual_seed(3);
  const at::MemoryFormat format =
      c.channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  const auto make = [&](double scale, double shift) {
    return (torch::randn({c.batch, c.channels, c.height, c.width}) * scale + shift)
        .to(c.dtype)
        .contiguous(format);
  };
  const torch::Tensor input = make(2.0, 0.5);
  const torch::Tensor upstream = make(1.0, 0.0);
  const torch::Tensor w0 = torch::rand({c.channels}) + 0.5;
  const torch::Tensor b0 = torch::randn({c.channels});
  const torch::Tensor means0 = torch::randn({c.splits * c.channels}) * 0.1;
  const torch::Tensor vars0 = torch::rand({c.splits * c.channels}) + 0.5;

  const Result want = SplitAndCat(input, w0, b0, means0, vars0, upstream, c.splits);
  const Result got = InPlace(input, w0, b0, means0, vars0, upstream, c.splits);

  EXPECT_EQ(got.y.scalar_type(), c.dtype);
  EXPECT_TRUE(got.y.is_contiguous(format));
  EXPECT_TRUE(torch::equal(got.y, want.y));
  EXPECT_TRUE(torch::equal(got.grad_x, want.grad_x));
  EXPECT_TRUE(torch::equal(got.grad_w, want.grad_w))
      << (got.grad_w - want.grad_w).abs().max().item<double>();
  EXPECT_TRUE(torch::equal(got.grad_b, want.grad_b))
      << (got.grad_b - want.grad_b).abs().max().item<double>();
  EXPECT_TRUE(torch::equal(got.means, want.means));
  EXPECT_TRUE(torch::equal(got.vars, want.vars));
  // The running statistics moved: the comparison above is not of two untouched copies.
  EXPECT_FALSE(torch::equal(got.means, means0));
}

INSTANTIATE_TEST_SUITE_P(
    Groups, ConsecutiveBatchNormTest,
    ::testing::Values(Case{torch::kFloat, false, 1, 4, 5, 3, 3},
                      Case{torch::kFloat, false, 4, 8, 5, 3, 3},
                      Case{torch::kFloat, true, 2, 8, 16, 5, 7},
                      Case{torch::kFloat, true, 8, 16, 32, 4, 4},
                      Case{torch::kBFloat16, false, 2, 8, 16, 5, 7},
                      Case{torch::kBFloat16, true, 1, 4, 8, 3, 3},
                      Case{torch::kBFloat16, true, 4, 8, 24, 6, 6},
                      Case{torch::kBFloat16, true, 8, 32, 64, 7, 7}),
    Name);

// The output is a fresh tensor, not a view: the in-place residual add and ReLU that follow a
// ResNet's BN give the same gradients as out-of-place ops on the plain way's output.
TEST(ConsecutiveBatchNormInPlaceOpsTest, OutputSupportsInPlaceOps) {
  torch::manual_seed(5);
  const auto cl = [](torch::Tensor t) { return t.contiguous(at::MemoryFormat::ChannelsLast); };
  const torch::Tensor input = cl(torch::randn({8, 16, 3, 3}));
  const torch::Tensor residual = cl(torch::randn({8, 16, 3, 3}));
  const torch::Tensor upstream = cl(torch::randn({8, 16, 3, 3}));
  const torch::Tensor w0 = torch::rand({16}) + 0.5, b0 = torch::randn({16});
  torch::Tensor means = torch::zeros({32}), vars = torch::ones({32});

  torch::Tensor x = input.clone().requires_grad_(true);
  torch::Tensor y = ConsecutiveGroupBatchNorm(x, w0, b0, means, vars, 2, kMomentum, kEps);
  y += residual;
  y.relu_();
  y.backward(upstream);

  torch::Tensor ref_x = input.clone().requires_grad_(true);
  torch::Tensor ref_means = torch::zeros({32}), ref_vars = torch::ones({32});
  std::vector<torch::Tensor> parts;
  for (int64_t g = 0; g < 2; ++g) {
    parts.push_back(torch::batch_norm(ref_x.narrow(0, 4 * g, 4), w0, b0,
                                      ref_means.narrow(0, 16 * g, 16),
                                      ref_vars.narrow(0, 16 * g, 16), true, kMomentum, kEps, true));
  }
  torch::Tensor ref_y = torch::relu(torch::cat(parts, 0) + residual);
  ref_y.backward(upstream);
  EXPECT_TRUE(torch::equal(y, ref_y));
  EXPECT_TRUE(torch::equal(x.grad(), ref_x.grad()));
}

TEST(ConsecutiveBatchNormContractTest, RefusesWhatItCannotWriteInPlace) {
  const torch::Tensor transposed = torch::randn({4, 3, 5, 6}).transpose(2, 3);
  EXPECT_FALSE(ConsecutiveGroupBatchNormApplies(transposed));
  EXPECT_FALSE(ConsecutiveGroupBatchNormApplies(torch::randn({4, 3})));
  EXPECT_FALSE(ConsecutiveGroupBatchNormApplies(torch::randn({4, 3, 5, 6}, torch::kDouble)));
  EXPECT_TRUE(ConsecutiveGroupBatchNormApplies(torch::randn({4, 3, 5, 6})));
  EXPECT_TRUE(ConsecutiveGroupBatchNormApplies(torch::randn({4, 3, 5, 6}).to(torch::kBFloat16)));
  torch::Tensor means = torch::zeros({6}), vars = torch::ones({6});
  try {
    ConsecutiveGroupBatchNorm(torch::randn({5, 3, 2, 2}), torch::ones({3}), torch::zeros({3}),
                              means, vars, 2, kMomentum, kEps);
    FAIL() << "a batch of 5 in 2 groups was accepted";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("batch 5 is not divisible by 2 groups"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace moco::torch_backend
