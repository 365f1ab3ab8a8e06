#include "bench/step_flops.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "moco/core/status_macros.h"

namespace moco {
namespace bench {
namespace {

int64_t StageWidth(int64_t base, float multiplier) {
  return std::max<int64_t>(1, static_cast<int64_t>(std::lround(base * multiplier)));
}

int OutSize(int in, int kernel, int stride, int padding) {
  return (in + 2 * padding - kernel) / stride + 1;
}

// Accumulates conv MACs: out_c * out_h * out_w * in_c * k * k.
struct Counter {
  int64_t macs = 0;
  int Conv(int size, int64_t in_c, int64_t out_c, int kernel, int stride, int padding) {
    const int out = OutSize(size, kernel, stride, padding);
    macs += out_c * static_cast<int64_t>(out) * out * in_c * kernel * kernel;
    return out;
  }
};

}  // namespace

absl::StatusOr<int64_t> ForwardMacsPerImage(const ModelConfig& model, int image_size) {
  std::vector<int> blocks;
  bool bottleneck = false;
  if (model.arch() == "resnet18") {
    blocks = {2, 2, 2, 2};
  } else if (model.arch() == "resnet34") {
    blocks = {3, 4, 6, 3};
  } else if (model.arch() == "resnet50") {
    blocks = {3, 4, 6, 3};
    bottleneck = true;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "model.arch '", model.arch(), "' is not resnet18, resnet34 or resnet50"));
  }
  if (!(model.width_multiplier() > 0)) {
    return absl::InvalidArgumentError(absl::StrCat("model.width_multiplier (",
                                                   model.width_multiplier(), ") must be > 0"));
  }
  if (image_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("image size (", image_size, ") must be >= 1"));
  }
  const float w = model.width_multiplier();
  const int64_t expansion = bottleneck ? 4 : 1;
  Counter c;
  int64_t in_c = StageWidth(64, w);
  int size = image_size;
  if (model.cifar_stem()) {
    size = c.Conv(size, model.in_channels(), in_c, 3, 1, 1);
  } else {
    size = c.Conv(size, model.in_channels(), in_c, 7, 2, 3);
    size = OutSize(size, 3, 2, 1);  // max pool
  }
  const int64_t bases[4] = {64, 128, 256, 512};
  for (int stage = 0; stage < 4; ++stage) {
    const int64_t planes = StageWidth(bases[stage], w);
    for (int b = 0; b < blocks[stage]; ++b) {
      const int stride = (stage > 0 && b == 0) ? 2 : 1;
      if (size < 1) break;
      const int64_t out_c = planes * expansion;
      int out_size;
      if (bottleneck) {
        c.Conv(size, in_c, planes, 1, 1, 0);
        out_size = c.Conv(size, planes, planes, 3, stride, 1);
        c.Conv(out_size, planes, out_c, 1, 1, 0);
      } else {
        out_size = c.Conv(size, in_c, planes, 3, stride, 1);
        c.Conv(out_size, planes, planes, 3, 1, 1);
      }
      if (stride != 1 || in_c != out_c) c.Conv(size, in_c, out_c, 1, stride, 0);
      in_c = out_c;
      size = out_size;
    }
  }
  if (size < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "image size ", image_size, " is too small for ", model.arch(),
        model.cifar_stem() ? " (CIFAR stem)" : " (ImageNet stem)"));
  }
  const int64_t feature = in_c;
  if (model.mlp_head()) {
    c.macs += feature * feature + feature * model.feature_dim();
  } else {
    c.macs += feature * model.feature_dim();
  }
  return c.macs;
}

absl::StatusOr<StepFlops> CountStepFlops(const ModelConfig& model, int image_size, int batch,
                                         int queue_size, bool symmetric_loss) {
  StepFlops f;
  ASSIGN_OR_RETURN(f.forward_macs_per_image, ForwardMacsPerImage(model, image_size));
  f.forward_flops_per_image = 2.0 * static_cast<double>(f.forward_macs_per_image);
  f.loss_flops = 4.0 * batch * static_cast<double>(queue_size) * model.feature_dim();
  const double terms = symmetric_loss ? 2 : 1;
  f.step_flops = terms * (4.0 * batch * f.forward_flops_per_image + f.loss_flops);
  return f;
}

}  // namespace bench
}  // namespace moco
