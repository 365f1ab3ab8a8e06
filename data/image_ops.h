// The deterministic image operations behind the augmentations, on float planar images.
//
// Semantics are torchvision 0.14's *tensor* functional ops on float images in [0, 1]
// (torchvision.transforms.functional on a ToTensor()'d image), which the golden test
// (data/image_ops_test.cc, goldens from data/testdata/make_goldens.py) checks:
//   ResizeCropBilinear = F.resized_crop(..., BILINEAR, antialias=False)
//                        (interpolate(mode="bilinear", align_corners=False), no antialiasing);
//   Grayscale          = F.rgb_to_grayscale (0.2989 R + 0.587 G + 0.114 B), replicated;
//   AdjustBrightness / AdjustContrast / AdjustSaturation / AdjustHue = F.adjust_*;
//   GaussianBlur       = F.gaussian_blur(kernel_size = 2 * ceil(3 sigma) + 1, sigma),
//                        reflect padding (kernel radius capped at side - 1 for tiny images).
// All functions are allocation-free once `scratch` buffers are warm; no virtual calls.
//
//   FloatImage img;
//   ResizeCropBilinear(image, {0, 0, image.height, image.width}, 224, 224, &img);
//   AdjustBrightness(1.3f, &img);
#ifndef DATA_IMAGE_OPS_H_
#define DATA_IMAGE_OPS_H_

#include <vector>

#include "data/image.h"

namespace moco {
namespace data {

// A float image, channels x height x width (CHW), row-major.
struct FloatImage {
  int channels = 0, height = 0, width = 0;
  std::vector<float> data;

  size_t plane() const { return static_cast<size_t>(height) * static_cast<size_t>(width); }
  float* channel(int c) { return data.data() + c * plane(); }
  const float* channel(int c) const { return data.data() + c * plane(); }
  void Reshape(int c, int h, int w) {
    channels = c;
    height = h;
    width = w;
    data.resize(static_cast<size_t>(c) * plane());
  }
};

// A crop window in source pixels.
struct CropBox {
  int top = 0, left = 0, height = 0, width = 0;
};

// Crops `box` out of `src` (uint8 HWC) and resizes it bilinearly to out_h x out_w, scaling
// values to [0, 1]: out has src.channels channels. Requires the box inside the image.
void ResizeCropBilinear(const Image& src, const CropBox& box, int out_h, int out_w,
                        FloatImage* out);

// Converts between 1 and 3 channels in place: 1 -> 3 replicates, 3 -> 1 takes the luminance
// 0.2989 R + 0.587 G + 0.114 B. Other combinations are programmer errors (CHECK).
void ConvertChannels(int channels, FloatImage* img);

// RGB -> luminance replicated into all 3 channels (torchvision Grayscale(3)). No-op on 1 channel.
void Grayscale(FloatImage* img);

// blend(img, 0, f) clamped to [0, 1].
void AdjustBrightness(float factor, FloatImage* img);
// blend(img, mean(grayscale(img)), f) clamped to [0, 1]; on 1 channel the mean of the image.
void AdjustContrast(float factor, FloatImage* img);
// blend(img, grayscale(img), f) clamped to [0, 1]. No-op on 1 channel (as torchvision).
void AdjustSaturation(float factor, FloatImage* img);
// Rotates hue by `shift` (a fraction of the circle, in [-0.5, 0.5]) via torchvision's
// RGB -> HSV -> RGB. No-op on 1 channel (as torchvision).
void AdjustHue(float shift, FloatImage* img);

// The threshold of MoCo v3's Solarize (PIL ImageOps.solarize(img, 128) on 8-bit images).
inline constexpr float kSolarizeThreshold = 128.0f / 255.0f;
// Every value >= threshold becomes 1 - value (torchvision F.solarize on float images).
void Solarize(float threshold, FloatImage* img);

// The kernel size GaussianBlur uses for `sigma`: 2 * ceil(3 sigma) + 1.
int BlurKernelSize(float sigma);
// Separable Gaussian blur with torchvision's kernel (linspace(-r, r, 2r+1), normalized exp)
// and reflect padding. `scratch` holds the intermediate.
void GaussianBlur(float sigma, FloatImage* img, std::vector<float>* scratch);

// Mirrors every row.
void FlipHorizontal(FloatImage* img);

}  // namespace data
}  // namespace moco

#endif  // DATA_IMAGE_OPS_H_
