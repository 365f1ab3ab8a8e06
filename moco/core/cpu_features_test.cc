#include "moco/core/cpu_features.h"

#include "gtest/gtest.h"

namespace moco {
namespace {

TEST(CpuFeaturesTest, ParsesTheFlagsLine) {
  const std::string cpuinfo =
      "processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 avx512f amx_bf16 amx_tile\n"
      "bugs\t\t: spectre_v1\n\nprocessor\t: 1\nflags\t\t: other\n";
  const std::set<std::string> flags = ParseCpuFlags(cpuinfo);
  EXPECT_EQ(flags, (std::set<std::string>{"fpu", "sse2", "avx512f", "amx_bf16", "amx_tile"}));
  EXPECT_EQ(Bf16CpuProblem(flags), "");
}

TEST(CpuFeaturesTest, Bf16NeedsAvx512Bf16OrAmx) {
  EXPECT_EQ(Bf16CpuProblem({"avx512_bf16"}), "");
  EXPECT_NE(Bf16CpuProblem({"avx2", "avx512f"}).find("this one has neither"), std::string::npos);
  EXPECT_NE(Bf16CpuProblem({}).find("lists no flags"), std::string::npos);
  EXPECT_TRUE(ParseCpuFlags("processor : 0\n").empty());
}

TEST(CpuFeaturesTest, Fp16IsNeverACpuPrecisionAndTheMessageSaysWhatToUse) {
  const std::string amx = Fp16CpuProblem({"avx512_fp16", "amx_bf16"});
  EXPECT_NE(amx.find("needs backend.device \"cuda\""), std::string::npos) << amx;
  EXPECT_NE(amx.find("has avx512_fp16, but"), std::string::npos) << amx;
  EXPECT_NE(amx.find("use BF16"), std::string::npos) << amx;
  const std::string old = Fp16CpuProblem({"avx2"});
  EXPECT_NE(old.find("no avx512_fp16 either"), std::string::npos) << old;
  EXPECT_NE(old.find("use FP32"), std::string::npos) << old;
}

TEST(CpuFeaturesTest, ThisMachineAgreesWithProcCpuinfo) {
  // Not a fixed expectation: whatever the kernel lists, the parsed set has it.
  const std::set<std::string>& flags = CpuFlags();
  if (flags.empty()) GTEST_SKIP() << "no /proc/cpuinfo flags here";
  EXPECT_TRUE(flags.count("fpu")) << "x86 CPUs list fpu";
}

}  // namespace
}  // namespace moco
