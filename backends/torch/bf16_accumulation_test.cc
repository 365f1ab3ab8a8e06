#include "backends/torch/bf16_accumulation.h"

#include <cmath>

#include "gtest/gtest.h"

namespace moco::torch_backend {
namespace {

// The relative error of a bf16 product of random matrices with a long reduction, against fp32:
// ~3e-3 (operand rounding only) when sums are fp32, over 1e-2 when they are bf16.
double LongReductionError(bool conv, bool channels_last) {
  torch::manual_seed(0);
  torch::Tensor ref, got;
  if (conv) {
    torch::Tensor x = torch::randn({8, 128, 6, 6});
    torch::Tensor w = torch::randn({32, 128, 3, 3});
    ref = torch::conv2d(x, w);
    auto xb = x.to(torch::kBFloat16), wb = w.to(torch::kBFloat16);
    if (channels_last) {
      xb = xb.contiguous(at::MemoryFormat::ChannelsLast);
      wb = wb.contiguous(at::MemoryFormat::ChannelsLast);
    }
    got = torch::conv2d(xb, wb).to(torch::kFloat32);
  } else {
    torch::Tensor a = torch::randn({64, 1152}), b = torch::randn({1152, 64});
    ref = torch::mm(a, b);
    got = torch::mm(a.to(torch::kBFloat16), b.to(torch::kBFloat16)).to(torch::kFloat32);
  }
  return ((got - ref).norm() / ref.norm()).item<double>();
}

// The probe's verdict agrees with a direct measurement on random data, for each kernel.
TEST(Bf16AccumulationTest, ProbeMatchesTheErrorOfALongReduction) {
  const Bf16Accumulation& a = MeasuredBf16Accumulation(torch::kCPU);
  const struct { bool conv, channels_last, fp32; const char* name; } cases[] = {
      {false, false, a.matmul_fp32, "matmul"},
      {true, false, a.nchw_conv_fp32, "nchw conv"},
      {true, true, a.channels_last_conv_fp32, "channels-last conv"},
  };
  for (const auto& c : cases) {
    const double error = LongReductionError(c.conv, c.channels_last);
    std::cout << c.name << ": sums in " << (c.fp32 ? "fp32" : "bf16") << ", relative error "
              << error << "\n";
    if (c.fp32) {
      EXPECT_LT(error, 6e-3) << c.name;
    } else {
      EXPECT_GT(error, 1e-2) << c.name;
    }
  }
}

TEST(Bf16AccumulationTest, WarningNamesTheKernelsAndTheRemedy) {
  Bf16Accumulation all_fp32;
  EXPECT_EQ(Bf16AccumulationWarning(all_fp32, false), "");
  EXPECT_EQ(Bf16AccumulationWarning(all_fp32, true), "");
  Bf16Accumulation fallback;  // what LibTorch 1.13 does on an AMD EPYC
  fallback.matmul_fp32 = false;
  fallback.nchw_conv_fp32 = false;
  const std::string nchw = Bf16AccumulationWarning(fallback, false);
  EXPECT_NE(nchw.find("linear layers and NCHW convolutions"), std::string::npos) << nchw;
  EXPECT_NE(nchw.find("backend.channels_last: true"), std::string::npos) << nchw;
  const std::string cl = Bf16AccumulationWarning(fallback, true);
  EXPECT_NE(cl.find("linear layers accumulate in bf16"), std::string::npos) << cl;
  EXPECT_EQ(cl.find("channels_last"), std::string::npos) << cl;
}

}  // namespace
}  // namespace moco::torch_backend
