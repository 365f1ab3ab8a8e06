// Analytic FLOP count of a MoCo training step, for benchmarks (achieved GFLOP/s).
//
//   ModelConfig model;  model.set_arch("resnet18");  model.set_cifar_stem(true);
//   StepFlops f = CountStepFlops(model, /*image_size=*/32, /*batch=*/256, /*queue_size=*/4096);
//   double gflop_per_s = f.step_flops / seconds_per_step / 1e9;
//
// Counted: convolutions and linear layers only, 2 FLOPs per multiply-accumulate (bias, BN, ReLU,
// pooling and the optimizer are ignored, as is usual). A step is
//   query forward + backward  ~ 3 x forward   (backward = grad wrt inputs + grad wrt weights)
//   key forward               = 1 x forward
//   InfoNCE                   = N * K * dim * 2 * 2  (logits against the queue, and their
//                                                     gradient with respect to q)
// so step_flops = 4 * N * forward_flops_per_image + N * K * dim * 4 (one loss term; a
// symmetric loss doubles everything).
#ifndef BENCH_STEP_FLOPS_H_
#define BENCH_STEP_FLOPS_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "moco/config/config.pb.h"

namespace moco {
namespace bench {

struct StepFlops {
  int64_t forward_macs_per_image = 0;  // convs + head linear layers, one image
  double forward_flops_per_image = 0;  // 2 * forward_macs_per_image
  double loss_flops = 0;               // N * K * dim * 4 (per loss term)
  double step_flops = 0;               // whole step, see the file comment
};

// Multiply-accumulates of one forward pass of `model` (torchvision ResNet structure, stage
// widths max(1, round(base * width_multiplier)), or a ViT: moco/core/vit_spec.h
// ViTBackboneMacs; then the projector head) on one image_size x image_size image.
// InvalidArgument naming the field for an unknown arch, a size that vanishes, or a ViT given
// another size than its model.image_size.
absl::StatusOr<int64_t> ForwardMacsPerImage(const ModelConfig& model, int image_size);

// The step's FLOPs for a batch of `batch` images and a queue of `queue_size` keys.
absl::StatusOr<StepFlops> CountStepFlops(const ModelConfig& model, int image_size, int batch,
                                         int queue_size, bool symmetric_loss = false);

// A MoCo v3 step on a batch of `batch` images: per view, the query encoder (with the predictor)
// forward + backward (3x its forward) and the key encoder's forward; two views; the symmetric
// in-batch loss 2 x N * N * feature_dim * 4. forward_flops_per_image is the query encoder's
// (with the predictor), loss_flops one of the two loss terms.
absl::StatusOr<StepFlops> CountMocoV3StepFlops(const ModelConfig& model, int image_size,
                                               int batch);

}  // namespace bench
}  // namespace moco

#endif  // BENCH_STEP_FLOPS_H_
