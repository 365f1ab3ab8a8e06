#include "data/cifar_dataset.h"

#include <string>

#include "data/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moco {
namespace data {
namespace {

using ::testing::HasSubstr;

// One record: label bytes then R, G, B planes with R = p % 256, G = 100 + tag, B = 255 - p % 256.
std::string Record(const std::string& label_bytes, int tag) {
  std::string s = label_bytes;
  for (int c = 0; c < 3; ++c)
    for (int p = 0; p < 1024; ++p) {
      const int v = c == 0 ? p % 256 : c == 1 ? 100 + tag : 255 - p % 256;
      s.push_back(static_cast<char>(v));
    }
  return s;
}

TEST(CifarDatasetTest, Cifar10PlanesBecomeHwc) {
  const std::string dir = MakeTempDir("cifar10");
  for (int b = 1; b <= 5; ++b) {
    WriteFileOrDie(dir + "/data_batch_" + std::to_string(b) + ".bin",
                   Record(std::string(1, static_cast<char>(b)), b) +
                       Record(std::string(1, static_cast<char>(9)), 10 + b));
  }
  WriteFileOrDie(dir + "/test_batch.bin", Record(std::string(1, '\3'), 0));
  auto train = OpenCifarSplit(dir, 10, Split::kTrain);
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_EQ((*train)->size(), 10);
  EXPECT_EQ((*train)->channels(), 3);
  EXPECT_EQ((*train)->num_classes(), 10);
  EXPECT_EQ((*train)->label(0), 1);
  EXPECT_EQ((*train)->label(1), 9);
  EXPECT_EQ((*train)->label(4), 3);
  auto img = (*train)->GetImage(5);  // data_batch_3 record 1, tag 13
  ASSERT_TRUE(img.ok());
  EXPECT_EQ(img->height, 32);
  EXPECT_EQ(img->width, 32);
  const int p = 33;  // pixel (1, 1)
  EXPECT_EQ(img->pixels[3 * p + 0], 33);
  EXPECT_EQ(img->pixels[3 * p + 1], 113);
  EXPECT_EQ(img->pixels[3 * p + 2], 255 - 33);
  EXPECT_THAT((*train)->Describe(5), HasSubstr("data_batch_3.bin record 1"));
  auto test = OpenCifarSplit(dir, 10, Split::kTest);
  ASSERT_TRUE(test.ok());
  EXPECT_EQ((*test)->size(), 1);
  EXPECT_EQ((*test)->label(0), 3);
}

TEST(CifarDatasetTest, Cifar100UsesFineLabels) {
  const std::string dir = MakeTempDir("cifar100");
  WriteFileOrDie(dir + "/train.bin", Record("\x05\x3f", 0) + Record("\x13\x63", 1));
  auto ds = OpenCifarSplit(dir, 100, Split::kTrain);
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ((*ds)->size(), 2);
  EXPECT_EQ((*ds)->num_classes(), 100);
  EXPECT_EQ((*ds)->label(0), 63);
  EXPECT_EQ((*ds)->label(1), 99);
  EXPECT_EQ(OpenCifarSplit(dir, 100, Split::kTest).status().code(), absl::StatusCode::kNotFound);
}

TEST(CifarDatasetTest, TruncatedFileNamesFile) {
  const std::string dir = MakeTempDir("cifar_trunc");
  const std::string two = Record("\x01", 0) + Record("\x02", 0);
  WriteFileOrDie(dir + "/test_batch.bin", two.substr(0, two.size() - 100));
  auto ds = OpenCifarSplit(dir, 10, Split::kTest);
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(ds.status().message(), HasSubstr(dir + "/test_batch.bin"));
  EXPECT_THAT(ds.status().message(), HasSubstr("3073-byte record"));
}

TEST(CifarDatasetTest, LabelOutOfRangeAndEmptyFile) {
  const std::string dir = MakeTempDir("cifar_bad");
  WriteFileOrDie(dir + "/a.bin", Record("\x0a", 0));
  auto bad = OpenCifarFiles({dir + "/a.bin"}, 10);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("label 10 out of range"));
  WriteFileOrDie(dir + "/empty.bin", "");
  auto empty = OpenCifarFiles({dir + "/empty.bin"}, 10);
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(empty.status().message(), HasSubstr("empty"));
}

}  // namespace
}  // namespace data
}  // namespace moco
