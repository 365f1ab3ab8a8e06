#include "data/image_ops.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>

#include "glog/logging.h"

namespace moco {
namespace data {
namespace {

constexpr float kR = 0.2989f, kG = 0.587f, kB = 0.114f;

// uint8 -> float exactly as ToTensor (v / 255 in float).
const std::array<float, 256>& ByteToUnit() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int i = 0; i < 256; ++i) t[i] = static_cast<float>(i) / 255.0f;
    return t;
  }();
  return table;
}

inline float Clamp01(float v) { return v < 0.f ? 0.f : (v > 1.f ? 1.f : v); }

// PyTorch's upsample_bilinear2d (align_corners=False) source index and weights.
struct Tap {
  int i0, i1;
  float w0, w1;
};

void LinearTaps(int in_size, int out_size, std::vector<Tap>* taps) {
  taps->resize(out_size);
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  for (int d = 0; d < out_size; ++d) {
    float src = static_cast<float>(scale * (d + 0.5) - 0.5);
    if (src < 0) src = 0;
    const int i0 = static_cast<int>(src);
    const int i1 = i0 + (i0 < in_size - 1 ? 1 : 0);
    const float l1 = std::min(std::max(src - static_cast<float>(i0), 0.f), 1.f);
    (*taps)[d] = {i0, i1, 1.f - l1, l1};
  }
}

inline float Gray(float r, float g, float b) { return kR * r + kG * g + kB * b; }

}  // namespace

void ResizeCropBilinear(const Image& src, const CropBox& box, int out_h, int out_w,
                        FloatImage* out) {
  CHECK(box.top >= 0 && box.left >= 0 && box.height > 0 && box.width > 0 &&
        box.top + box.height <= src.height && box.left + box.width <= src.width)
      << "crop box outside the image";
  const int c = src.channels;
  out->Reshape(c, out_h, out_w);
  thread_local std::vector<Tap> ytaps, xtaps;
  LinearTaps(box.height, out_h, &ytaps);
  LinearTaps(box.width, out_w, &xtaps);
  const auto& unit = ByteToUnit();
  const size_t row_stride = static_cast<size_t>(src.width) * c;
  const uint8_t* base = src.pixels.data() + static_cast<size_t>(box.top) * row_stride +
                        static_cast<size_t>(box.left) * c;
  for (int y = 0; y < out_h; ++y) {
    const Tap& ty = ytaps[y];
    const uint8_t* r0 = base + ty.i0 * row_stride;
    const uint8_t* r1 = base + ty.i1 * row_stride;
    for (int k = 0; k < c; ++k) {
      float* dst = out->channel(k) + static_cast<size_t>(y) * out_w;
      for (int x = 0; x < out_w; ++x) {
        const Tap& tx = xtaps[x];
        const int a = tx.i0 * c + k, b = tx.i1 * c + k;
        const float top = tx.w0 * unit[r0[a]] + tx.w1 * unit[r0[b]];
        const float bottom = tx.w0 * unit[r1[a]] + tx.w1 * unit[r1[b]];
        dst[x] = ty.w0 * top + ty.w1 * bottom;
      }
    }
  }
}

void ConvertChannels(int channels, FloatImage* img) {
  if (img->channels == channels) return;
  const size_t n = img->plane();
  if (img->channels == 1 && channels == 3) {
    img->Reshape(3, img->height, img->width);
    std::copy(img->channel(0), img->channel(0) + n, img->channel(1));
    std::copy(img->channel(0), img->channel(0) + n, img->channel(2));
    return;
  }
  CHECK(img->channels == 3 && channels == 1)
      << "ConvertChannels: " << img->channels << " -> " << channels;
  float* r = img->channel(0);
  const float* g = img->channel(1);
  const float* b = img->channel(2);
  for (size_t i = 0; i < n; ++i) r[i] = Gray(r[i], g[i], b[i]);
  img->Reshape(1, img->height, img->width);
}

void Grayscale(FloatImage* img) {
  if (img->channels != 3) return;
  const size_t n = img->plane();
  float* r = img->channel(0);
  float* g = img->channel(1);
  float* b = img->channel(2);
  for (size_t i = 0; i < n; ++i) r[i] = g[i] = b[i] = Gray(r[i], g[i], b[i]);
}

void Solarize(float threshold, FloatImage* img) {
  for (float& v : img->data) v = v >= threshold ? 1.0f - v : v;
}

void AdjustBrightness(float factor, FloatImage* img) {
  for (float& v : img->data) v = Clamp01(factor * v);
}

void AdjustContrast(float factor, FloatImage* img) {
  const size_t n = img->plane();
  double sum = 0;
  if (img->channels == 3) {
    const float* r = img->channel(0);
    const float* g = img->channel(1);
    const float* b = img->channel(2);
    for (size_t i = 0; i < n; ++i) sum += Gray(r[i], g[i], b[i]);
  } else {
    for (float v : img->data) sum += v;
  }
  // Mean over the luminance plane (3 channels) or over all values (1 channel: n of them).
  const float mean = static_cast<float>(sum / static_cast<double>(n > 0 ? n : 1));
  const float offset = (1.0f - factor) * mean;
  for (float& v : img->data) v = Clamp01(factor * v + offset);
}

void AdjustSaturation(float factor, FloatImage* img) {
  if (img->channels != 3) return;
  const size_t n = img->plane();
  float* r = img->channel(0);
  float* g = img->channel(1);
  float* b = img->channel(2);
  const float rest = 1.0f - factor;
  for (size_t i = 0; i < n; ++i) {
    const float l = rest * Gray(r[i], g[i], b[i]);
    r[i] = Clamp01(factor * r[i] + l);
    g[i] = Clamp01(factor * g[i] + l);
    b[i] = Clamp01(factor * b[i] + l);
  }
}

void AdjustHue(float shift, FloatImage* img) {
  if (img->channels != 3) return;
  const size_t n = img->plane();
  float* __restrict rp = img->channel(0);
  float* __restrict gp = img->channel(1);
  float* __restrict bp = img->channel(2);
  // Branch-free (selects only) so the compiler can vectorize; the arithmetic is torchvision's.
  for (size_t i = 0; i < n; ++i) {
    const float r = rp[i], g = gp[i], b = bp[i];
    // torchvision _rgb2hsv
    const float gb_max = g > b ? g : b, gb_min = g < b ? g : b;
    const float maxc = r > gb_max ? r : gb_max;
    const float minc = r < gb_min ? r : gb_min;
    const bool eqc = maxc == minc;
    const float cr = maxc - minc;
    const float s = cr / (eqc ? 1.0f : maxc);
    const float div = eqc ? 1.0f : cr;
    const float rc = (maxc - r) / div, gc = (maxc - g) / div, bc = (maxc - b) / div;
    const float hr = bc - gc, hg = 2.0f + rc - bc, hb = 4.0f + gc - rc;
    float h = maxc == r ? hr : (maxc == g ? hg : hb);
    // torch.fmod(h / 6 + 1, 1): the argument lies in [0, 2), where subtracting 1 is exact.
    h = h / 6.0f + 1.0f;
    h = h >= 1.0f ? h - 1.0f : h;
    // (h + shift) % 1.0, Python's sign convention; h + shift lies in (-1, 2) (exact as above).
    h += shift;
    h = h >= 1.0f ? h - 1.0f : (h < 0.0f ? h + 1.0f : h);
    // torchvision _hsv2rgb
    const float h6 = h * 6.0f;
    const float fi = std::floor(h6);
    const float f = h6 - fi;
    const float sector = fi >= 6.0f ? fi - 6.0f : fi;  // i % 6 for i in [0, 6]
    const float v = maxc;
    const float p = Clamp01(v * (1.0f - s));
    const float q = Clamp01(v * (1.0f - s * f));
    const float t = Clamp01(v * (1.0f - s * (1.0f - f)));
    // sector: 0 (v,t,p) 1 (q,v,p) 2 (p,v,t) 3 (p,q,v) 4 (t,p,v) 5 (v,p,q)
    rp[i] = sector == 0.f || sector == 5.f ? v : (sector == 1.f ? q : (sector == 4.f ? t : p));
    gp[i] = sector == 1.f || sector == 2.f ? v : (sector == 0.f ? t : (sector == 3.f ? q : p));
    bp[i] = sector == 3.f || sector == 4.f ? v : (sector == 2.f ? t : (sector == 5.f ? q : p));
  }
}

int BlurKernelSize(float sigma) {
  return 2 * static_cast<int>(std::ceil(3.0f * sigma)) + 1;
}

void GaussianBlur(float sigma, FloatImage* img, std::vector<float>* scratch) {
  CHECK_GT(sigma, 0.f);
  const int h = img->height, w = img->width;
  int radius = (BlurKernelSize(sigma) - 1) / 2;
  radius = std::min(radius, std::min(h, w) - 1);
  if (radius <= 0) return;
  const int k = 2 * radius + 1;
  float kernel[2 * 64 + 1];
  CHECK_LE(radius, 64) << "blur sigma too large";
  {
    double sum = 0;
    for (int i = 0; i < k; ++i) {
      // torch.linspace(-r, r, k): exact integers here.
      const float x = static_cast<float>(i - radius) / sigma;
      kernel[i] = std::exp(-0.5f * x * x);
      sum += kernel[i];
    }
    for (int i = 0; i < k; ++i) kernel[i] = static_cast<float>(kernel[i] / sum);
  }
  auto reflect = [](int i, int n) { return i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i); };
  scratch->resize(static_cast<size_t>(h) * w + w + 2 * radius);
  float* tmp = scratch->data();
  float* padded = tmp + static_cast<size_t>(h) * w;
  for (int c = 0; c < img->channels; ++c) {
    float* p = img->channel(c);
    // Vertical pass into tmp.
    for (int y = 0; y < h; ++y) {
      float* dst = tmp + static_cast<size_t>(y) * w;
      std::fill(dst, dst + w, 0.f);
      for (int t = 0; t < k; ++t) {
        const float* src = p + static_cast<size_t>(reflect(y + t - radius, h)) * w;
        const float kt = kernel[t];
        for (int x = 0; x < w; ++x) dst[x] += kt * src[x];
      }
    }
    // Horizontal pass back into p, through a reflect-padded copy of each row.
    for (int y = 0; y < h; ++y) {
      const float* src = tmp + static_cast<size_t>(y) * w;
      for (int x = -radius; x < w + radius; ++x) padded[x + radius] = src[reflect(x, w)];
      float* dst = p + static_cast<size_t>(y) * w;
      // Tap-outer order: each pass is a vectorizable axpy over the row; per output pixel the
      // terms are still summed in tap order.
      std::fill(dst, dst + w, 0.f);
      for (int t = 0; t < k; ++t) {
        const float kt = kernel[t];
        const float* s = padded + t;
        for (int x = 0; x < w; ++x) dst[x] += kt * s[x];
      }
    }
  }
}

void FlipHorizontal(FloatImage* img) {
  const int w = img->width;
  for (int c = 0; c < img->channels; ++c) {
    for (int y = 0; y < img->height; ++y) {
      float* row = img->channel(c) + static_cast<size_t>(y) * w;
      std::reverse(row, row + w);
    }
  }
}

}  // namespace data
}  // namespace moco
