#include "moco/core/host_array.h"

#include "gtest/gtest.h"

namespace moco {
namespace {

TEST(HostArrayTest, ZeroFilledWithTheShapesElementCount) {
  const HostArray a({2, 3, 4});
  EXPECT_EQ(a.shape(), (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(a.numel(), 24);
  for (float v : a.data()) EXPECT_EQ(v, 0.0f);
  EXPECT_EQ(HostArray(std::vector<int64_t>{}).numel(), 1);  // a scalar
  EXPECT_EQ(HostArray({0, 5}).numel(), 0);
  EXPECT_EQ(HostArray().numel(), 0);
}

TEST(HostArrayTest, FromDataChecksTheSize) {
  absl::StatusOr<HostArray> ok = HostArray::FromData({2, 2}, {1, 2, 3, 4});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->data()[3], 4.0f);

  absl::StatusOr<HostArray> short_data = HostArray::FromData({2, 2}, {1, 2, 3});
  ASSERT_FALSE(short_data.ok());
  EXPECT_EQ(short_data.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(short_data.status().message().find("(2, 2) holds 4 values but 3 were given"),
            std::string::npos)
      << short_data.status();
  EXPECT_FALSE(HostArray::FromData({-1}, {}).ok());
}

TEST(HostArrayTest, ElementCountOverflowIsAnErrorNotAWrap) {
  // 16 x 2^30 x 2^30 = 2^64 wraps to 0 in uint64: it must be refused, not accepted as empty.
  const int64_t g = int64_t{1} << 30;
  absl::StatusOr<int64_t> n = HostArray::NumElements({16, g, g});
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.status().message().find("2^62"), std::string::npos) << n.status();
  EXPECT_FALSE(HostArray::FromData({16, g, g}, {}).ok());
  EXPECT_EQ(HostArray::NumElements({0, g, g, g}).value(), 0);
}

TEST(HostArrayTest, MismatchedConstructionIsAProgrammingError) {
  EXPECT_DEATH(HostArray({3}, {1.0f, 2.0f}), "holds 3 values but 2 were given");
  EXPECT_DEATH(HostArray({-2}), "negative dimension");
}

TEST(HostArrayTest, MutableDataWritesInPlaceWithoutResizing) {
  HostArray a({3});
  a.mutable_data()[1] = 7;
  EXPECT_EQ(a.data()[1], 7.0f);
  EXPECT_EQ(a.mutable_data().size(), 3u);
  EXPECT_EQ(a, HostArray({3}, {0, 7, 0}));
}

}  // namespace
}  // namespace moco
