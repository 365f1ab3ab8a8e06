// JPEG (libturbojpeg) and PNG (libpng) decoding to 8-bit RGB, and encoding (tests, benchmark).
//
//   Image img;
//   RETURN_IF_ERROR(DecodeImage(bytes, "/data/train/cat/1.jpg", &img));   // img.channels == 3
#ifndef DATA_IMAGE_CODEC_H_
#define DATA_IMAGE_CODEC_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "data/image.h"

namespace moco {
namespace data {

// Decodes a JPEG or PNG (chosen by the file signature, not the name) into 3-channel RGB HWC,
// reusing `out`'s buffer. Grayscale files are replicated to RGB; CMYK and YCCK JPEGs
// are converted as Pillow 9.4 converts them (Image.open(f).convert("RGB")); PNG alpha is composited on
// black; 16-bit PNGs are reduced to 8 bits. Unknown formats, corrupt or truncated data
// (including libjpeg warnings such as a premature end of data) give DataLossError naming
// `name`. Resource limits: at most 2^28 pixels, and at most 1024 (JPEG) or 8 * 1032 (PNG)
// pixels per byte of the file, checked on the header before anything is allocated (no valid
// Huffman-coded JPEG or PNG exceeds these; an arithmetic-coded, nearly flat JPEG could).
// Thread-safe.
absl::Status DecodeImage(const std::string& bytes, const std::string& name, Image* out);

// Encodes a 1- or 3-channel image. JPEG quality in [1, 100], 4:2:0 subsampling for RGB.
absl::StatusOr<std::string> EncodeJpeg(const Image& image, int quality);
absl::StatusOr<std::string> EncodePng(const Image& image);

}  // namespace data
}  // namespace moco

#endif  // DATA_IMAGE_CODEC_H_
