// Each linked backend judges its own device strings, through the registry the validators use.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "moco/core/backend_registry.h"

namespace moco {
namespace {

std::string Problem(const std::string& backend, const std::string& device) {
  absl::StatusOr<std::string> problem = DeviceProblem(backend, device);
  EXPECT_TRUE(problem.ok()) << problem.status();
  return problem.ok() ? *problem : "";
}

TEST(BackendDevicesTest, TorchTakesCpuAndCudaDevices) {
  for (const char* ok : {"cpu", "cuda", "cuda:0", "cuda:7"}) EXPECT_EQ(Problem("torch", ok), "") << ok;
  for (const char* bad : {"tpu", "cuda:x", "cuda:-1", "CPU", ""}) {
    EXPECT_THAT(Problem("torch", bad), ::testing::HasSubstr("for the torch backend")) << bad;
  }
}

TEST(BackendDevicesTest, EigenIsCpuOnly) {
  EXPECT_EQ(Problem("eigen", "cpu"), "");
  EXPECT_THAT(Problem("eigen", "cuda"), ::testing::HasSubstr("eigen"));
}

TEST(BackendDevicesTest, UnknownBackendIsNotFoundListingTheLinkedOnes) {
  absl::StatusOr<std::string> problem = DeviceProblem("jax", "cpu");
  ASSERT_EQ(problem.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(problem.status().message()), ::testing::HasSubstr("eigen, torch"));
}

}  // namespace
}  // namespace moco
