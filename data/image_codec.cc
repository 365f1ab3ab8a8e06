#include "data/image_codec.h"

#include <png.h>
#include <turbojpeg.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"

namespace moco {
namespace data {
namespace {

// One decompressor per thread: tjInitDecompress allocates, so keep it for the thread's life.
// After a failed call libjpeg's state is undefined (a header cut short left the next decode
// reading "0x0"), so Reset() replaces the handle.
struct TjHandle {
  tjhandle handle = nullptr;
  bool compress;
  explicit TjHandle(bool c) : compress(c) { Init(); }
  ~TjHandle() {
    if (handle != nullptr) tjDestroy(handle);
  }
  void Init() { handle = compress ? tjInitCompress() : tjInitDecompress(); }
  void Reset() {
    if (handle != nullptr) tjDestroy(handle);
    Init();
  }
};

// Pillow 9.4's CMYK -> RGB (Convert.c cmyk2rgb) on libjpeg's raw (Adobe-inverted) CMYK:
// Pillow reads 4-component JPEGs as "CMYK;I", i.e. C = 255 - raw, so with nk = 255 - K = raw_k,
// out = nk - round(C * nk / 255), rounding as its MULDIV255.
inline uint8_t PilCmykChannel(int raw_c, int raw_k) {
  const int c = 255 - raw_c;
  const int t = c * raw_k + 128;
  return static_cast<uint8_t>(raw_k - (((t >> 8) + t) >> 8));
}

// Limits (docs/FUZZING.md): at most 2^28 pixels, and no more pixels than the file's bytes
// can encode, so that a small file cannot make the decoder allocate its claimed size.
// A Huffman-coded JPEG spends at least 1 bit per 8x8 block of its full-resolution
// component: at most 512 pixels per byte (1024 allowed). Deflate expands at most 1032 times
// and a PNG pixel takes at least 1 bit: at most 8 * 1032 pixels per byte.
constexpr int64_t kMaxPixels = int64_t{1} << 28;
constexpr int64_t kMaxJpegPixelsPerByte = 1024;
constexpr int64_t kMaxPngPixelsPerByte = 8 * 1032;

// Empty when width x height is allowed for a `file_bytes`-byte file of `format`.
std::string SizeProblem(const char* format, int64_t width, int64_t height, size_t file_bytes,
                        int64_t max_pixels_per_byte) {
  if (width <= 0 || height <= 0 || width * height > kMaxPixels) {
    return absl::StrCat(format, " has unsupported size ", width, "x", height,
                        " (at most 2^28 pixels)");
  }
  if (width * height > max_pixels_per_byte * static_cast<int64_t>(file_bytes)) {
    return absl::StrCat(format, " claims ", width, "x", height, " pixels, more than its ",
                        file_bytes, " bytes can encode (at most ", max_pixels_per_byte,
                        " pixels per byte)");
  }
  return "";
}

bool IsJpeg(const std::string& b) {
  return b.size() >= 3 && static_cast<unsigned char>(b[0]) == 0xFF &&
         static_cast<unsigned char>(b[1]) == 0xD8 && static_cast<unsigned char>(b[2]) == 0xFF;
}

bool IsPng(const std::string& b) {
  static const unsigned char kSig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  return b.size() >= 8 && std::memcmp(b.data(), kSig, 8) == 0;
}

absl::Status DecodeJpeg(const std::string& bytes, const std::string& name, Image* out) {
  thread_local TjHandle tj(/*compress=*/false);
  if (tj.handle == nullptr) tj.Reset();
  if (tj.handle == nullptr) return absl::InternalError("tjInitDecompress failed");
  int width = 0, height = 0, subsamp = 0, colorspace = 0;
  const auto* src = reinterpret_cast<const unsigned char*>(bytes.data());
  if (tjDecompressHeader3(tj.handle, src, bytes.size(), &width, &height, &subsamp, &colorspace) !=
      0) {
    const std::string msg = tjGetErrorStr2(tj.handle);
    tj.Reset();
    return absl::DataLossError(absl::StrCat(name, ": corrupt JPEG header: ", msg));
  }
  const std::string size_problem =
      SizeProblem("JPEG", width, height, bytes.size(), kMaxJpegPixelsPerByte);
  if (!size_problem.empty()) {
    tj.Reset();
    return absl::DataLossError(absl::StrCat(name, ": ", size_problem));
  }
  const bool cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
  out->Reshape(height, width, 3);
  thread_local std::vector<unsigned char> cmyk_buf;
  unsigned char* dst = out->pixels.data();
  if (cmyk) {
    cmyk_buf.resize(static_cast<size_t>(width) * height * 4);
    dst = cmyk_buf.data();
  }
  // Warnings (e.g. "Premature end of JPEG file") also return -1: a truncated file would give
  // a silently gray-filled image, so they count as corruption too.
  if (tjDecompress2(tj.handle, src, bytes.size(), dst, width, width * (cmyk ? 4 : 3), height,
                    cmyk ? TJPF_CMYK : TJPF_RGB, TJFLAG_ACCURATEDCT) != 0) {
    const std::string msg = tjGetErrorStr2(tj.handle);
    tj.Reset();
    return absl::DataLossError(absl::StrCat(name, ": corrupt JPEG data: ", msg));
  }
  if (cmyk) {
    const size_t n = static_cast<size_t>(width) * height;
    for (size_t i = 0; i < n; ++i) {
      const unsigned char* p = &cmyk_buf[4 * i];
      for (int k = 0; k < 3; ++k) out->pixels[3 * i + k] = PilCmykChannel(p[k], p[3]);
    }
  }
  return absl::OkStatus();
}

absl::Status DecodePng(const std::string& bytes, const std::string& name, Image* out) {
  png_image png;
  std::memset(&png, 0, sizeof(png));
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&png, bytes.data(), bytes.size())) {
    const std::string msg = png.message;
    png_image_free(&png);
    return absl::DataLossError(absl::StrCat(name, ": corrupt PNG header: ", msg));
  }
  png.format = PNG_FORMAT_RGB;
  const int width = static_cast<int>(png.width), height = static_cast<int>(png.height);
  const std::string size_problem =
      SizeProblem("PNG", png.width, png.height, bytes.size(), kMaxPngPixelsPerByte);
  if (!size_problem.empty()) {
    png_image_free(&png);
    return absl::DataLossError(absl::StrCat(name, ": ", size_problem));
  }
  out->Reshape(height, width, 3);
  png_color black = {0, 0, 0};
  if (!png_image_finish_read(&png, &black, out->pixels.data(), width * 3, nullptr)) {
    const std::string msg = png.message;
    png_image_free(&png);
    return absl::DataLossError(absl::StrCat(name, ": corrupt PNG data: ", msg));
  }
  png_image_free(&png);
  return absl::OkStatus();
}

}  // namespace

absl::Status DecodeImage(const std::string& bytes, const std::string& name, Image* out) {
  if (IsJpeg(bytes)) return DecodeJpeg(bytes, name, out);
  if (IsPng(bytes)) return DecodePng(bytes, name, out);
  if (bytes.empty()) return absl::DataLossError(absl::StrCat(name, ": empty image file"));
  return absl::DataLossError(
      absl::StrCat(name, ": not a JPEG or PNG file (unrecognized signature)"));
}

absl::StatusOr<std::string> EncodeJpeg(const Image& image, int quality) {
  if (image.channels != 1 && image.channels != 3) {
    return absl::InvalidArgumentError(absl::StrCat("EncodeJpeg: ", image.channels, " channels"));
  }
  thread_local TjHandle tj(/*compress=*/true);
  unsigned char* buf = nullptr;
  unsigned long size = 0;  // NOLINT(runtime/int): turbojpeg's type
  const int rc = tjCompress2(tj.handle, image.pixels.data(), image.width, 0, image.height,
                             image.channels == 3 ? TJPF_RGB : TJPF_GRAY, &buf, &size,
                             image.channels == 3 ? TJSAMP_420 : TJSAMP_GRAY, quality, 0);
  if (rc != 0) {
    if (buf != nullptr) tjFree(buf);
    return absl::InternalError(absl::StrCat("EncodeJpeg: ", tjGetErrorStr2(tj.handle)));
  }
  std::string out(reinterpret_cast<const char*>(buf), size);
  tjFree(buf);
  return out;
}

absl::StatusOr<std::string> EncodePng(const Image& image) {
  if (image.channels != 1 && image.channels != 3) {
    return absl::InvalidArgumentError(absl::StrCat("EncodePng: ", image.channels, " channels"));
  }
  png_image png;
  std::memset(&png, 0, sizeof(png));
  png.version = PNG_IMAGE_VERSION;
  png.width = static_cast<png_uint_32>(image.width);
  png.height = static_cast<png_uint_32>(image.height);
  png.format = image.channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&png, nullptr, &size, 0, image.pixels.data(), 0, nullptr)) {
    return absl::InternalError(absl::StrCat("EncodePng: ", png.message));
  }
  std::string out(size, '\0');
  if (!png_image_write_to_memory(&png, &out[0], &size, 0, image.pixels.data(), 0, nullptr)) {
    return absl::InternalError(absl::StrCat("EncodePng: ", png.message));
  }
  out.resize(size);
  return out;
}

}  // namespace data
}  // namespace moco
