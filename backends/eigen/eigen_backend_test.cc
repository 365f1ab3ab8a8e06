// What is specific to the Eigen backend (its devices). The backend contract (encoder, queue,
// loss, SGD, tensors) is tests/backend_contract_test, run over every registered backend.
#include "backends/eigen/eigen_backend.h"

#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "moco/core/backend_registry.h"

namespace moco {
namespace eigen_backend {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<Backend> NewBackend() {
  auto b = CreateBackend("eigen", BackendOptions{"cpu", 2});
  EXPECT_TRUE(b.ok()) << b.status();
  return std::move(b).value();
}

TEST(EigenBackendTest, RegisteredAndRejectsOtherDevices) {
  EXPECT_THAT(RegisteredBackendNames(), ::testing::Contains("eigen"));
  auto b = CreateBackend("eigen", BackendOptions{"cuda", 0});
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(b.status().message()), HasSubstr("backend.device"));
  EXPECT_EQ(NewBackend()->name(), "eigen");
}

}  // namespace
}  // namespace eigen_backend
}  // namespace moco
