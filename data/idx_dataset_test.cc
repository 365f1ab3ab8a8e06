#include "data/idx_dataset.h"

#include <string>

#include "data/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moco {
namespace data {
namespace {

using ::testing::HasSubstr;

// 3 images of 2x4 pixels with value 10*i + p, labels 2, 0, 7.
std::string ImageFile(uint32_t magic = 0x803, uint32_t n = 3, int drop_bytes = 0) {
  std::string s = BigEndian32(magic) + BigEndian32(n) + BigEndian32(2) + BigEndian32(4);
  for (int i = 0; i < 3; ++i)
    for (int p = 0; p < 8; ++p) s.push_back(static_cast<char>(10 * i + p));
  s.resize(s.size() - drop_bytes);
  return s;
}

std::string LabelFile(uint32_t n = 3) {
  std::string s = BigEndian32(0x801) + BigEndian32(n);
  const char labels[] = {2, 0, 7, 1};
  s.append(labels, n);
  return s;
}

TEST(IdxDatasetTest, ReadsRawFiles) {
  const std::string dir = MakeTempDir("idx_raw");
  WriteFileOrDie(dir + "/train-images-idx3-ubyte", ImageFile());
  WriteFileOrDie(dir + "/train-labels-idx1-ubyte", LabelFile());
  auto ds = OpenIdxSplit(dir, Split::kTrain);
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ((*ds)->size(), 3);
  EXPECT_EQ((*ds)->channels(), 1);
  EXPECT_EQ((*ds)->num_classes(), 8);
  EXPECT_EQ((*ds)->label(0), 2);
  EXPECT_EQ((*ds)->label(2), 7);
  auto img = (*ds)->GetImage(2);
  ASSERT_TRUE(img.ok());
  EXPECT_EQ(img->height, 2);
  EXPECT_EQ(img->width, 4);
  EXPECT_EQ(img->channels, 1);
  EXPECT_EQ(img->pixels[0], 20);
  EXPECT_EQ(img->pixels[7], 27);
  EXPECT_THAT((*ds)->Describe(1), HasSubstr("train-images-idx3-ubyte"));
  EXPECT_FALSE((*ds)->GetImage(3).ok());
}

TEST(IdxDatasetTest, ReadsGzipTestSplit) {
  const std::string dir = MakeTempDir("idx_gz");
  WriteGzipFileOrDie(dir + "/t10k-images-idx3-ubyte.gz", ImageFile());
  WriteGzipFileOrDie(dir + "/t10k-labels-idx1-ubyte.gz", LabelFile());
  auto ds = OpenIdxSplit(dir, Split::kTest);
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ((*ds)->size(), 3);
  Image img;
  ASSERT_TRUE((*ds)->ReadImage(1, &img).ok());
  EXPECT_EQ(img.pixels[3], 13);
  // The train split is not there.
  auto missing = OpenIdxSplit(dir, Split::kTrain);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("train-images-idx3-ubyte"));
}

TEST(IdxDatasetTest, WrongMagicNamesFile) {
  const std::string dir = MakeTempDir("idx_magic");
  WriteFileOrDie(dir + "/im", ImageFile(0x801));
  WriteFileOrDie(dir + "/lb", LabelFile());
  auto ds = OpenIdxDataset(dir + "/im", dir + "/lb");
  ASSERT_FALSE(ds.ok());
  EXPECT_THAT(ds.status().message(), HasSubstr(dir + "/im"));
  EXPECT_THAT(ds.status().message(), HasSubstr("magic"));
  // Labels and images swapped.
  auto swapped = OpenIdxDataset(dir + "/lb", dir + "/im");
  ASSERT_FALSE(swapped.ok());
  EXPECT_THAT(swapped.status().message(), HasSubstr("magic"));
}

TEST(IdxDatasetTest, TruncatedFileNamesFile) {
  const std::string dir = MakeTempDir("idx_trunc");
  WriteFileOrDie(dir + "/im", ImageFile(0x803, 3, /*drop_bytes=*/5));
  WriteFileOrDie(dir + "/lb", LabelFile());
  auto ds = OpenIdxDataset(dir + "/im", dir + "/lb");
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(ds.status().message(), HasSubstr(dir + "/im"));
  EXPECT_THAT(ds.status().message(), HasSubstr("truncated"));
  // Header cut short.
  WriteFileOrDie(dir + "/short", ImageFile().substr(0, 9));
  auto short_header = OpenIdxDataset(dir + "/short", dir + "/lb");
  ASSERT_FALSE(short_header.ok());
  EXPECT_THAT(short_header.status().message(), HasSubstr("truncated"));
}

TEST(IdxDatasetTest, TruncatedGzipStreamIsAnError) {
  const std::string dir = MakeTempDir("idx_gztrunc");
  WriteGzipFileOrDie(dir + "/full.gz", ImageFile());
  // Re-write only the first half of the compressed bytes.
  FILE* f = std::fopen((dir + "/full.gz").c_str(), "rb");
  ASSERT_NE(f, nullptr);
  std::string gz(4096, '\0');
  gz.resize(std::fread(&gz[0], 1, gz.size(), f));
  std::fclose(f);
  WriteFileOrDie(dir + "/half.gz", gz.substr(0, gz.size() / 2));
  WriteFileOrDie(dir + "/lb", LabelFile());
  auto ds = OpenIdxDataset(dir + "/half.gz", dir + "/lb");
  ASSERT_FALSE(ds.ok());
  EXPECT_THAT(ds.status().message(), HasSubstr(dir + "/half.gz"));
}

TEST(IdxDatasetTest, LabelCountMismatchNamesBothFiles) {
  const std::string dir = MakeTempDir("idx_count");
  WriteFileOrDie(dir + "/im", ImageFile());
  WriteFileOrDie(dir + "/lb", LabelFile(4));
  auto ds = OpenIdxDataset(dir + "/im", dir + "/lb");
  ASSERT_FALSE(ds.ok());
  EXPECT_THAT(ds.status().message(), HasSubstr("4 labels"));
  EXPECT_THAT(ds.status().message(), HasSubstr("3 images"));
  EXPECT_THAT(ds.status().message(), HasSubstr(dir + "/lb"));
}

// Issue 18 item 1: 16 x 2^30 x 2^30 wraps a 64-bit product to 0; it must be refused by the
// header check (it used to pass it and abort in std::bad_alloc).
TEST(IdxDatasetTest, DimensionsOverflowingSixtyFourBitsAreRefused) {
  const std::string dir = MakeTempDir("idx_overflow");
  const std::string header =
      BigEndian32(0x803) + BigEndian32(16) + BigEndian32(1u << 30) + BigEndian32(1u << 30);
  WriteFileOrDie(dir + "/im", header);
  WriteGzipFileOrDie(dir + "/im.gz", header);
  std::string labels = BigEndian32(0x801) + BigEndian32(16) + std::string(16, '\1');
  WriteFileOrDie(dir + "/lb", labels);
  for (const char* name : {"/im", "/im.gz"}) {
    auto ds = OpenIdxDataset(dir + name, dir + "/lb");
    ASSERT_FALSE(ds.ok()) << name;
    EXPECT_EQ(ds.status().code(), absl::StatusCode::kInvalidArgument) << ds.status();
    EXPECT_THAT(ds.status().message(), HasSubstr(dir + name));
    EXPECT_THAT(ds.status().message(), HasSubstr("16 x 1073741824 x 1073741824"));
  }
}

// A header that claims far more data than a small file holds is refused as truncated; a single
// image above 2^28 pixels is refused by the header check.
TEST(IdxDatasetTest, HugeClaimsInSmallFilesAreRefused) {
  const std::string dir = MakeTempDir("idx_claims");
  WriteFileOrDie(dir + "/lb", LabelFile());
  const std::string big = BigEndian32(0x803) + BigEndian32(3) + BigEndian32(1u << 18) +
                          BigEndian32(1u << 18) + std::string(84, 'x');
  WriteFileOrDie(dir + "/big", big);
  WriteGzipFileOrDie(dir + "/big.gz", big);
  for (const char* name : {"/big", "/big.gz"}) {
    auto ds = OpenIdxDataset(dir + name, dir + "/lb");
    ASSERT_FALSE(ds.ok());
    EXPECT_THAT(ds.status().message(), HasSubstr("limit of 2^28 pixels")) << ds.status();
  }
  const std::string claim = BigEndian32(0x803) + BigEndian32(3) + BigEndian32(1u << 14) +
                            BigEndian32(1u << 14) + std::string(84, 'x');
  WriteFileOrDie(dir + "/claim", claim);
  WriteGzipFileOrDie(dir + "/claim.gz", claim);
  for (const char* name : {"/claim", "/claim.gz"}) {
    auto ds = OpenIdxDataset(dir + name, dir + "/lb");
    ASSERT_FALSE(ds.ok());
    EXPECT_EQ(ds.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(ds.status().message(), HasSubstr("header promises 805306368 data bytes, file has 84"));
  }
}

TEST(IdxDatasetTest, TrailingBytesAreAnError) {
  const std::string dir = MakeTempDir("idx_trailing");
  WriteGzipFileOrDie(dir + "/im.gz", ImageFile() + "abc");
  WriteFileOrDie(dir + "/lb", LabelFile());
  auto ds = OpenIdxDataset(dir + "/im.gz", dir + "/lb");
  ASSERT_FALSE(ds.ok());
  EXPECT_THAT(ds.status().message(), HasSubstr("3 bytes beyond the 24"));
}

TEST(IdxDatasetTest, MissingFileIsNotFound) {
  auto ds = OpenIdxDataset("/nonexistent/im", "/nonexistent/lb");
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(ds.status().message(), HasSubstr("/nonexistent/im"));
}

}  // namespace
}  // namespace data
}  // namespace moco
