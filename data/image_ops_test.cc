// Golden test: data/image_ops against torchvision 0.14 (data/testdata/make_goldens.py).
// Tolerance: max |difference| <= 2e-6 on values in [0, 1] (float32 rounding-order noise;
// a wrong formula, off-by-one sampling or wrong kernel gives errors >= 1e-3).
#include "data/image_ops.h"

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "glog/logging.h"
#include "data/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moco {
namespace data {
namespace {

constexpr float kTol = 2e-6f;

using Golden = GoldenArray;

const std::map<std::string, Golden>& Goldens() {
  static const auto* goldens =
      new std::map<std::string, Golden>(ReadGoldensOrDie("data/testdata/image_ops_goldens.txt"));
  return *goldens;
}

Image InputImage(const std::string& name) {
  const Golden& g = Goldens().at(name);
  Image img;
  img.Reshape(g.h, g.w, g.c);
  for (size_t i = 0; i < g.v.size(); ++i) img.pixels[i] = static_cast<uint8_t>(g.v[i]);
  return img;
}

FloatImage ToFloat(const Image& img) {
  FloatImage f;
  ResizeCropBilinear(img, {0, 0, img.height, img.width}, img.height, img.width, &f);
  return f;
}

void ExpectMatches(const FloatImage& got, const std::string& name) {
  const Golden& g = Goldens().at(name);
  ASSERT_EQ(got.channels, g.c) << name;
  ASSERT_EQ(got.height, g.h) << name;
  ASSERT_EQ(got.width, g.w) << name;
  double max_err = 0;
  for (size_t i = 0; i < g.v.size(); ++i) {
    max_err = std::max(max_err, std::abs(static_cast<double>(got.data[i]) - g.v[i]));
  }
  EXPECT_LE(max_err, kTol) << name;
}

TEST(ImageOpsGoldenTest, SameSizeResizeIsExactToTensor) {
  const Image img = InputImage("input_rgb");
  const FloatImage f = ToFloat(img);
  ASSERT_EQ(f.channels, 3);
  // (y=2, x=4) is white, (1, 1) pure red; CHW layout.
  EXPECT_EQ(f.data[0 * 80 + 2 * 10 + 4], 1.0f);
  EXPECT_EQ(f.data[0 * 80 + 1 * 10 + 1], 1.0f);
  EXPECT_EQ(f.data[1 * 80 + 1 * 10 + 1], 0.0f);
  EXPECT_EQ(f.data[1 * 80 + 3 * 10 + 7], img.pixels[(3 * 10 + 7) * 3 + 1] / 255.0f);
}

TEST(ImageOpsGoldenTest, BilinearResizeAndResizedCrop) {
  const Image img = InputImage("input_rgb");
  FloatImage out;
  ResizeCropBilinear(img, {0, 0, 8, 10}, 16, 20, &out);
  ExpectMatches(out, "resize_full_16x20");
  ResizeCropBilinear(img, {0, 0, 8, 10}, 5, 3, &out);
  ExpectMatches(out, "resize_full_5x3");
  ResizeCropBilinear(img, {1, 2, 6, 7}, 9, 5, &out);
  ExpectMatches(out, "resized_crop_1_2_6_7_to_9x5");
  ResizeCropBilinear(InputImage("input_gray"), {3, 0, 5, 10}, 7, 7, &out);
  ExpectMatches(out, "resized_crop_gray_3_0_5_10_to_7x7");
}

TEST(ImageOpsGoldenTest, GrayscaleAndLuminance) {
  FloatImage f = ToFloat(InputImage("input_rgb"));
  Grayscale(&f);
  ExpectMatches(f, "grayscale");
  FloatImage l = ToFloat(InputImage("input_rgb"));
  ConvertChannels(1, &l);
  ExpectMatches(l, "to_luminance");
  ConvertChannels(3, &l);
  ExpectMatches(l, "grayscale");  // replicating the luminance = Grayscale(3)
}

TEST(ImageOpsGoldenTest, ColorAdjustments) {
  const FloatImage x = ToFloat(InputImage("input_rgb"));
  struct Case {
    const char* name;
    void (*op)(float, FloatImage*);
    float factor;
  };
  const Case cases[] = {
      {"brightness_1.37", AdjustBrightness, 1.37f}, {"brightness_0.6", AdjustBrightness, 0.6f},
      {"contrast_1.5", AdjustContrast, 1.5f},       {"contrast_0.55", AdjustContrast, 0.55f},
      {"saturation_1.8", AdjustSaturation, 1.8f},   {"saturation_0.3", AdjustSaturation, 0.3f},
      {"hue_0.23", AdjustHue, 0.23f},               {"hue_-0.41", AdjustHue, -0.41f},
      {"hue_0.1", AdjustHue, 0.1f},
  };
  for (const Case& c : cases) {
    FloatImage f = x;
    c.op(c.factor, &f);
    ExpectMatches(f, c.name);
  }
  FloatImage g = ToFloat(InputImage("input_gray"));
  AdjustContrast(1.4f, &g);
  ExpectMatches(g, "contrast_gray_1.4");
}

TEST(ImageOpsGoldenTest, ColorOpsOnOneChannelFollowTorchvision) {
  const FloatImage g = ToFloat(InputImage("input_gray"));
  FloatImage f = g;
  AdjustSaturation(0.2f, &f);
  AdjustHue(0.3f, &f);
  Grayscale(&f);
  EXPECT_EQ(f.data, g.data);  // all no-ops on 1 channel
}

TEST(ImageOpsGoldenTest, GaussianBlur) {
  EXPECT_EQ(BlurKernelSize(0.8f), 7);
  EXPECT_EQ(BlurKernelSize(1.5f), 11);
  EXPECT_EQ(BlurKernelSize(2.0f), 13);
  const FloatImage x = ToFloat(InputImage("input_rgb"));
  std::vector<float> scratch;
  for (float s : {0.8f, 1.5f}) {
    FloatImage f = x;
    GaussianBlur(s, &f, &scratch);
    std::ostringstream name;
    name << "blur_" << s;
    ExpectMatches(f, name.str());
  }
}

TEST(ImageOpsGoldenTest, Solarize) {
  FloatImage f = ToFloat(InputImage("input_rgb"));
  Solarize(kSolarizeThreshold, &f);
  ExpectMatches(f, "solarize");
}

TEST(ImageOpsGoldenTest, Flip) {
  FloatImage f = ToFloat(InputImage("input_rgb"));
  FlipHorizontal(&f);
  ExpectMatches(f, "hflip");
}

}  // namespace
}  // namespace data
}  // namespace moco
