#include "data/image_codec.h"

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <vector>
#include <string>

#include "gmock/gmock.h"
#include "zlib.h"
#include "gtest/gtest.h"

namespace moco {
namespace data {
namespace {

using ::testing::HasSubstr;

Image Gradient(int h, int w, int c, int step = 7) {
  Image img;
  img.Reshape(h, w, c);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < c; ++k)
        img.pixels[(y * w + x) * c + k] = static_cast<uint8_t>((x * step + y * 3 + k * 60) % 256);
  return img;
}

TEST(ImageCodecTest, PngRoundTripIsExact) {
  const Image src = Gradient(9, 13, 3);
  auto png = EncodePng(src);
  ASSERT_TRUE(png.ok());
  Image out;
  ASSERT_TRUE(DecodeImage(*png, "x.png", &out).ok());
  EXPECT_EQ(out.height, 9);
  EXPECT_EQ(out.width, 13);
  EXPECT_EQ(out.channels, 3);
  EXPECT_EQ(out.pixels, src.pixels);
}

TEST(ImageCodecTest, GrayPngIsReplicatedToRgb) {
  const Image src = Gradient(4, 5, 1);
  auto png = EncodePng(src);
  ASSERT_TRUE(png.ok());
  Image out;
  ASSERT_TRUE(DecodeImage(*png, "g.png", &out).ok());
  ASSERT_EQ(out.channels, 3);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(out.pixels[3 * i], src.pixels[i]);
    EXPECT_EQ(out.pixels[3 * i + 2], src.pixels[i]);
  }
}

TEST(ImageCodecTest, JpegRoundTripIsClose) {
  const Image src = Gradient(16, 24, 3, /*step=*/4);  // smooth, no wrap-around edges
  auto jpg = EncodeJpeg(src, 95);
  ASSERT_TRUE(jpg.ok());
  Image out;
  ASSERT_TRUE(DecodeImage(*jpg, "x.jpg", &out).ok());
  ASSERT_EQ(out.pixels.size(), src.pixels.size());
  double err = 0;
  for (size_t i = 0; i < src.pixels.size(); ++i) err += std::abs(out.pixels[i] - src.pixels[i]);
  EXPECT_LT(err / src.pixels.size(), 3.0);  // lossy, but the same picture
}

TEST(ImageCodecTest, CorruptAndTruncatedDataAreErrorsNamingTheFile) {
  const Image src = Gradient(32, 32, 3);
  auto jpg = EncodeJpeg(src, 90);
  ASSERT_TRUE(jpg.ok());
  Image out;
  absl::Status truncated = DecodeImage(jpg->substr(0, jpg->size() / 2), "/d/cut.jpg", &out);
  EXPECT_EQ(truncated.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(truncated.message(), HasSubstr("/d/cut.jpg"));
  absl::Status header = DecodeImage(jpg->substr(0, 20), "/d/hdr.jpg", &out);
  EXPECT_EQ(header.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(header.message(), HasSubstr("/d/hdr.jpg"));
  auto png = EncodePng(src);
  ASSERT_TRUE(png.ok());
  absl::Status png_cut = DecodeImage(png->substr(0, png->size() - 40), "/d/cut.png", &out);
  EXPECT_EQ(png_cut.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(png_cut.message(), HasSubstr("/d/cut.png"));
  absl::Status text = DecodeImage("hello world", "/d/readme.jpg", &out);
  EXPECT_THAT(text.message(), HasSubstr("not a JPEG or PNG"));
  EXPECT_EQ(DecodeImage("", "/d/empty.png", &out).code(), absl::StatusCode::kDataLoss);
}

// Issue 18 item 2: a failed decode must not poison the thread's decoder. A JPEG cut inside
// its header used to make the next, valid JPEG fail with "unsupported size 0x0".
TEST(ImageCodecTest, FailedDecodeDoesNotBreakTheNextOne) {
  const Image src = Gradient(32, 48, 3, /*step=*/4);
  auto jpg = EncodeJpeg(src, 90);
  ASSERT_TRUE(jpg.ok());
  Image good;
  ASSERT_TRUE(DecodeImage(*jpg, "first.jpg", &good).ok());
  // Every cut point: inside the header, inside the data, and just before EOI.
  for (size_t cut : {size_t{3}, size_t{20}, size_t{120}, size_t{300}, jpg->size() / 2,
                     jpg->size() - 2}) {
    Image out;
    EXPECT_FALSE(DecodeImage(jpg->substr(0, cut), "cut.jpg", &out).ok()) << cut;
    absl::Status next = DecodeImage(*jpg, "next.jpg", &out);
    ASSERT_TRUE(next.ok()) << "after a cut at " << cut << ": " << next;
    EXPECT_EQ(out.pixels, good.pixels) << cut;
  }
}

// Issue 18 item 3: CMYK JPEGs (ImageNet has some) decode to the RGB Pillow gives, as do
// grayscale ones. Files and values from data/testdata/make_pil_jpegs.py.
// Writes a big-endian 16/32-bit value at `offset`.
void PutBigEndian(std::string* bytes, size_t offset, uint32_t v, int n) {
  for (int i = 0; i < n; ++i) (*bytes)[offset + i] = static_cast<char>(v >> (8 * (n - 1 - i)));
}

// Issue 18 fuzzing: a JPEG header claiming 16000 x 16000 pixels, cut after its scan header
// (a few hundred bytes), was decoded into a 768 MB buffer (1 GB more for CMYK) before the
// data ran out. It is refused on its header now.
TEST(ImageCodecTest, SmallJpegClaimingHugeSizeIsRefusedBeforeAllocating) {
  auto jpeg = EncodeJpeg(Gradient(16, 16, 3), 90);
  ASSERT_TRUE(jpeg.ok());
  std::string bytes = *jpeg;
  const size_t sof = bytes.find("\xFF\xC0");
  const size_t sos = bytes.find("\xFF\xDA");
  ASSERT_NE(sof, std::string::npos);
  ASSERT_NE(sos, std::string::npos);
  PutBigEndian(&bytes, sof + 5, 16000, 2);  // height
  PutBigEndian(&bytes, sof + 7, 16000, 2);  // width
  bytes.resize(sos + 20);
  Image out;
  absl::Status status = DecodeImage(bytes, "huge.jpg", &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr("huge.jpg: JPEG claims 16000x16000 pixels"));
  EXPECT_THAT(status.message(), HasSubstr("at most 1024 pixels per byte"));
  EXPECT_LT(out.pixels.capacity(), size_t{1} << 20);
  // The same limit at its boundary: a real image far below it still decodes.
  EXPECT_TRUE(DecodeImage(*jpeg, "ok.jpg", &out).ok());
}

TEST(ImageCodecTest, SmallPngClaimingHugeSizeIsRefusedBeforeAllocating) {
  auto png = EncodePng(Gradient(4, 4, 3));
  ASSERT_TRUE(png.ok());
  std::string bytes = *png;
  // IHDR: length(4) "IHDR" width(4) height(4) ... CRC over type + data.
  const size_t ihdr = bytes.find("IHDR");
  ASSERT_NE(ihdr, std::string::npos);
  PutBigEndian(&bytes, ihdr + 4, 16000, 4);
  PutBigEndian(&bytes, ihdr + 8, 16000, 4);
  const uLong crc = crc32(crc32(0L, Z_NULL, 0),
                          reinterpret_cast<const Bytef*>(bytes.data()) + ihdr, 4 + 13);
  PutBigEndian(&bytes, ihdr + 17, static_cast<uint32_t>(crc), 4);
  Image out;
  absl::Status status = DecodeImage(bytes, "huge.png", &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr("huge.png: PNG claims 16000x16000 pixels"));
  EXPECT_LT(out.pixels.capacity(), size_t{1} << 20);
}

TEST(ImageCodecTest, CmykAndGrayJpegsDecodeLikePillow) {
  std::ifstream golden("data/testdata/pil_jpeg_rgb.txt");
  ASSERT_TRUE(golden.good());
  std::string name;
  int h = 0, w = 0, files = 0;
  while (golden >> name >> h >> w) {
    std::vector<int> want(static_cast<size_t>(h) * w * 3);
    for (int& v : want) golden >> v;
    std::ifstream f("data/testdata/" + name, std::ios::binary);
    ASSERT_TRUE(f.good()) << name;
    const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    Image out;
    absl::Status st = DecodeImage(bytes, name, &out);
    ASSERT_TRUE(st.ok()) << st;
    ASSERT_EQ(out.height, h);
    ASSERT_EQ(out.width, w);
    ASSERT_EQ(out.channels, 3);
    int differ = 0;
    for (size_t i = 0; i < want.size(); ++i) differ += out.pixels[i] != want[i];
    EXPECT_EQ(differ, 0) << name << ": values differing from Pillow";
    ++files;
  }
  EXPECT_EQ(files, 2);
}

}  // namespace
}  // namespace data
}  // namespace moco
