#include "data/image_folder_dataset.h"

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

Image Solid(int h, int w, uint8_t r, uint8_t g, uint8_t b) {
  Image img;
  img.Reshape(h, w, 3);
  for (int i = 0; i < h * w; ++i) {
    img.pixels[3 * i] = r;
    img.pixels[3 * i + 1] = g;
    img.pixels[3 * i + 2] = b;
  }
  return img;
}

TEST(ImageFolderDatasetTest, ClassesSortedAndDecodedOnTheFly) {
  const std::string root = MakeTempDir("folder_ok");
  std::filesystem::create_directories(root + "/zebra");
  std::filesystem::create_directories(root + "/apple");
  std::filesystem::create_directories(root + "/.hidden");
  WriteFileOrDie(root + "/zebra/b.PNG", *EncodePng(Solid(5, 7, 200, 10, 30)));
  WriteFileOrDie(root + "/zebra/a.jpg", *EncodeJpeg(Solid(16, 8, 0, 0, 250), 95));
  WriteFileOrDie(root + "/apple/x.jpeg", *EncodeJpeg(Solid(8, 8, 250, 250, 0), 95));
  WriteFileOrDie(root + "/apple/notes.txt", "ignored");
  auto ds = OpenImageFolder(root);
  ASSERT_TRUE(ds.ok()) << ds.status();
  ASSERT_EQ((*ds)->size(), 3);
  EXPECT_EQ((*ds)->num_classes(), 2);
  EXPECT_EQ((*ds)->channels(), 3);
  EXPECT_EQ((*ds)->label(0), 0);  // apple/x.jpeg
  EXPECT_EQ((*ds)->label(1), 1);  // zebra/a.jpg
  EXPECT_EQ((*ds)->label(2), 1);  // zebra/b.PNG
  EXPECT_EQ((*ds)->Describe(1), root + "/zebra/a.jpg");
  auto png = (*ds)->GetImage(2);
  ASSERT_TRUE(png.ok()) << png.status();
  EXPECT_EQ(png->height, 5);
  EXPECT_EQ(png->width, 7);
  EXPECT_EQ(png->pixels[0], 200);
  EXPECT_EQ(png->pixels[2], 30);
  auto jpg = (*ds)->GetImage(1);
  ASSERT_TRUE(jpg.ok()) << jpg.status();
  EXPECT_EQ(jpg->height, 16);
  EXPECT_NEAR(jpg->pixels[2], 250, 4);
  EXPECT_NEAR(jpg->pixels[0], 0, 4);
}

TEST(ImageFolderDatasetTest, CorruptFileErrorNamesTheFile) {
  const std::string root = MakeTempDir("folder_corrupt");
  std::filesystem::create_directories(root + "/c");
  const std::string jpg = *EncodeJpeg(Solid(32, 32, 1, 2, 3), 90);
  WriteFileOrDie(root + "/c/good.jpg", jpg);
  WriteFileOrDie(root + "/c/truncated.jpg", jpg.substr(0, jpg.size() / 2));
  WriteFileOrDie(root + "/c/zgarbage.png", "definitely not a png");
  auto ds = OpenImageFolder(root);
  ASSERT_TRUE(ds.ok());
  EXPECT_TRUE((*ds)->GetImage(0).ok());
  auto cut = (*ds)->GetImage(1);
  EXPECT_EQ(cut.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(cut.status().message(), HasSubstr(root + "/c/truncated.jpg"));
  auto garbage = (*ds)->GetImage(2);
  EXPECT_EQ(garbage.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(garbage.status().message(), HasSubstr(root + "/c/zgarbage.png"));
}

TEST(ImageFolderDatasetTest, BadLayoutsAreErrorsNamingTheFolder) {
  const std::string empty = MakeTempDir("folder_empty");
  auto no_classes = OpenImageFolder(empty);
  ASSERT_FALSE(no_classes.ok());
  EXPECT_THAT(no_classes.status().message(), HasSubstr(empty));
  EXPECT_THAT(no_classes.status().message(), HasSubstr("no class subfolders"));

  const std::string root = MakeTempDir("folder_emptyclass");
  std::filesystem::create_directories(root + "/a");
  std::filesystem::create_directories(root + "/b");
  WriteFileOrDie(root + "/a/1.png", *EncodePng(Solid(2, 2, 0, 0, 0)));
  auto empty_class = OpenImageFolder(root);
  ASSERT_FALSE(empty_class.ok());
  EXPECT_THAT(empty_class.status().message(), HasSubstr(root + "/b"));

  auto missing = OpenImageFolder(root + "/nope");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr(root + "/nope"));
}

}  // namespace
}  // namespace data
}  // namespace moco
