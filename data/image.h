// A decoded image in host memory: 8-bit pixels, height x width x channels (HWC), row-major.
//
//   Image img;
//   img.height = 28; img.width = 28; img.channels = 1;
//   img.pixels.assign(28 * 28, 0);
//   uint8_t v = img.pixels[(y * img.width + x) * img.channels + c];
#ifndef DATA_IMAGE_H_
#define DATA_IMAGE_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace moco {
namespace data {

struct Image {
  int height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;  // HWC, size height * width * channels

  size_t num_values() const {
    return static_cast<size_t>(height) * static_cast<size_t>(width) * static_cast<size_t>(channels);
  }
  // Sets the shape and sizes `pixels` (reusing its capacity; contents unspecified).
  void Reshape(int h, int w, int c) {
    height = h;
    width = w;
    channels = c;
    pixels.resize(num_values());
  }
};

}  // namespace data
}  // namespace moco

#endif  // DATA_IMAGE_H_
