#include "bench/step_flops.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "moco/core/model_spec.h"
#include "moco/core/status_macros.h"

namespace moco {
namespace bench {
namespace {

int OutSize(int in, int kernel, int stride, int padding) {
  return (in + 2 * padding - kernel) / stride + 1;
}

// Accumulates conv MACs: out_c * out_h * out_w * in_c * k * k.
struct Counter {
  int64_t macs = 0;
  int Conv(int size, const ConvSpec& c) {
    const int out = OutSize(size, static_cast<int>(c.kernel), static_cast<int>(c.stride),
                            static_cast<int>(c.padding));
    macs += c.out_channels * static_cast<int64_t>(out) * out * c.in_channels * c.kernel * c.kernel;
    return out;
  }
};

int64_t HeadMacs(const HeadSpec& head) {
  int64_t macs = 0;
  for (int i = 0; i < head.num_layers(); ++i) macs += head.widths[i] * head.widths[i + 1];
  return macs;
}

}  // namespace

absl::StatusOr<int64_t> ForwardMacsPerImage(const ModelConfig& model, int image_size) {
  ASSIGN_OR_RETURN(const EncoderSpec spec, EncoderSpecFromConfig(model));
  if (image_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("image size (", image_size, ") must be >= 1"));
  }
  const BackboneSpec& b = spec.backbone;
  Counter c;
  if (b.is_vit()) {
    if (image_size != b.vit.image_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "image size ", image_size, " is not model.image_size (", b.vit.image_size, ") of ",
          model.arch(), ": a ViT takes exactly the input its position embedding is built for"));
    }
    c.macs = ViTBackboneMacs(b.vit) + HeadMacs(spec.projector);
    return c.macs;
  }
  int size = c.Conv(image_size, b.stem);
  if (b.has_max_pool) size = OutSize(size, 3, 2, 1);
  for (const BlockSpec& block : b.blocks) {
    if (size < 1) break;
    int out_size = size;
    for (const ConvSpec& conv : block.convs) out_size = c.Conv(out_size, conv);
    if (block.has_downsample) c.Conv(size, block.downsample);
    size = out_size;
  }
  if (size < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "image size ", image_size, " is too small for ", model.arch(),
        model.cifar_stem() ? " (CIFAR stem)" : " (ImageNet stem)"));
  }
  return c.macs + HeadMacs(spec.projector);
}

absl::StatusOr<StepFlops> CountMocoV3StepFlops(const ModelConfig& model, int image_size,
                                               int batch) {
  StepFlops f;
  ASSIGN_OR_RETURN(f.forward_macs_per_image, ForwardMacsPerImage(model, image_size));
  ASSIGN_OR_RETURN(const EncoderSpec spec, EncoderSpecFromConfig(model));
  const double key = 2.0 * static_cast<double>(f.forward_macs_per_image);
  const double query = key + (spec.predictor ? 2.0 * HeadMacs(*spec.predictor) : 0.0);
  f.forward_flops_per_image = query;
  // ctr(q1, k2) + ctr(q2, k1): N x N logits over feature_dim, and their gradient wrt q.
  f.loss_flops = 4.0 * batch * static_cast<double>(batch) * model.feature_dim();
  f.step_flops = 2.0 * (batch * (3.0 * query + key) + f.loss_flops);
  return f;
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
