#include "data/dataset.h"

#include <filesystem>
#include <string>

#include "data/image_codec.h"
#include "data/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moco {
namespace data {
namespace {

using ::testing::HasSubstr;

TEST(OpenDatasetTest, IdxUsesTestPathFolderForTestSplit) {
  const std::string train = MakeTempDir("open_idx_train");
  const std::string test = MakeTempDir("open_idx_test");
  auto images = [](uint32_t n) {
    std::string s = BigEndian32(0x803) + BigEndian32(n) + BigEndian32(1) + BigEndian32(1);
    return s + std::string(n, '\x07');
  };
  auto labels = [](uint32_t n) {
    return BigEndian32(0x801) + BigEndian32(n) + std::string(n, '\x01');
  };
  WriteFileOrDie(train + "/train-images-idx3-ubyte", images(4));
  WriteFileOrDie(train + "/train-labels-idx1-ubyte", labels(4));
  WriteFileOrDie(train + "/t10k-images-idx3-ubyte", images(2));
  WriteFileOrDie(train + "/t10k-labels-idx1-ubyte", labels(2));
  WriteFileOrDie(test + "/t10k-images-idx3-ubyte", images(3));
  WriteFileOrDie(test + "/t10k-labels-idx1-ubyte", labels(3));
  DataConfig config;
  config.set_dataset(DataConfig::IDX);
  config.set_train_path(train);
  auto tr = OpenDataset(config, Split::kTrain);
  ASSERT_TRUE(tr.ok()) << tr.status();
  EXPECT_EQ((*tr)->size(), 4);
  auto te = OpenDataset(config, Split::kTest);
  ASSERT_TRUE(te.ok()) << te.status();
  EXPECT_EQ((*te)->size(), 2);
  config.set_test_path(test);
  auto te2 = OpenDataset(config, Split::kTest);
  ASSERT_TRUE(te2.ok()) << te2.status();
  EXPECT_EQ((*te2)->size(), 3);
}

TEST(OpenDatasetTest, ConfigErrorsNameTheField) {
  DataConfig config;
  config.set_dataset(DataConfig::CIFAR10);
  auto empty = OpenDataset(config, Split::kTrain);
  EXPECT_THAT(empty.status().message(), HasSubstr("data.train_path"));
  config.set_dataset(DataConfig::IMAGE_FOLDER);
  config.set_train_path("/tmp");
  auto no_test = OpenDataset(config, Split::kTest);
  EXPECT_THAT(no_test.status().message(), HasSubstr("data.test_path"));
  config.set_dataset(DataConfig::DATASET_UNSPECIFIED);
  auto unspecified = OpenDataset(config, Split::kTrain);
  EXPECT_THAT(unspecified.status().message(), HasSubstr("data.dataset"));
}

TEST(OpenDatasetTest, ImageFolderAndCifar) {
  const std::string root = MakeTempDir("open_folder");
  std::filesystem::create_directories(root + "/cls");
  Image img;
  img.Reshape(3, 3, 3);
  WriteFileOrDie(root + "/cls/a.png", *EncodePng(img));
  DataConfig config;
  config.set_dataset(DataConfig::IMAGE_FOLDER);
  config.set_train_path(root);
  auto ds = OpenDataset(config, Split::kTrain);
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ((*ds)->size(), 1);
  config.set_dataset(DataConfig::CIFAR100);
  auto cifar = OpenDataset(config, Split::kTrain);
  EXPECT_EQ(cifar.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(cifar.status().message(), HasSubstr(root + "/train.bin"));
}

// The real Fashion-MNIST from Debian's dataset-fashion-mnist, when installed.
TEST(OpenDatasetTest, DebianFashionMnist) {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::exists(dir + "/t10k-images-idx3-ubyte.gz")) GTEST_SKIP() << "not installed";
  DataConfig config;
  config.set_dataset(DataConfig::IDX);  // empty train_path: the Debian location
  auto ds = OpenDataset(config, Split::kTest);
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ((*ds)->size(), 10000);
  EXPECT_EQ((*ds)->num_classes(), 10);
  auto img = (*ds)->GetImage(0);
  ASSERT_TRUE(img.ok());
  EXPECT_EQ(img->height, 28);
  EXPECT_EQ(img->width, 28);
  EXPECT_EQ((*ds)->label(0), 9);  // the first Fashion-MNIST test image is an ankle boot
}

}  // namespace
}  // namespace data
}  // namespace moco
