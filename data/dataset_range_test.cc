#include "data/dataset_range.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace moco {
namespace data {
namespace {

// 7 one-pixel images; image i has pixel value i and label i % 3.
class Numbered final : public Dataset {
 public:
  int64_t size() const override { return 7; }
  int num_classes() const override { return 3; }
  int channels() const override { return 1; }
  int label(int64_t index) const override { return static_cast<int>(index % 3); }
  absl::Status ReadImage(int64_t index, Image* out) const override {
    out->Reshape(1, 1, 1);
    out->pixels[0] = static_cast<uint8_t>(index);
    return absl::OkStatus();
  }
  std::string Describe(int64_t index) const override { return absl::StrCat("image ", index); }
};

TEST(DatasetRangeTest, IndexIOfTheRangeIsIndexBeginPlusIOfTheBase) {
  DatasetRange range(std::make_shared<Numbered>(), 2, 6);
  ASSERT_EQ(range.size(), 4);
  EXPECT_EQ(range.num_classes(), 3);
  for (int64_t i = 0; i < range.size(); ++i) {
    auto image = range.GetImage(i);
    ASSERT_TRUE(image.ok()) << image.status();
    EXPECT_EQ(image->pixels[0], 2 + i);
    EXPECT_EQ(range.label(i), (2 + i) % 3);
    EXPECT_EQ(range.Describe(i), absl::StrCat("image ", 2 + i));
  }
}

TEST(DatasetRangeTest, BoundsOutsideTheBaseAreClamped) {
  auto base = std::make_shared<Numbered>();
  EXPECT_EQ(DatasetRange(base, 5, 100).size(), 2);
  EXPECT_EQ(DatasetRange(base, 9, 12).size(), 0);
  EXPECT_EQ(DatasetRange(base, -3, 1).size(), 1);
  EXPECT_EQ(DatasetRange(base, 4, 2).size(), 0);
}

}  // namespace
}  // namespace data
}  // namespace moco
