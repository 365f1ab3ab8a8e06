// Training-mode BatchNorm over n consecutive groups of a batch (group g = samples
// [g * N / n, (g + 1) * N / n)), each normalized with its own statistics, written straight into
// one output tensor: the CPU path of SplitBatchNorm2d's SplitLayout::kConsecutive.
//
// The plain way, split + one batch_norm per group + cat, copies every activation once more in
// the forward (the cat) and once more in the backward (split's backward is a cat of the
// gradients); in a channels-last bf16 ResNet-50 step that cat was ~10% of the time. Here each
// group's kernel writes its slice of the output (and of the input gradient) in place.
//
// Bitwise equal to the plain way: the statistics come from at::batch_norm_update_stats and the
// transform from ATen's own CPU batch-norm kernels (at::native::batch_norm_cpu_stub and
// batch_norm_cpu_backward_stub), the ones torch::batch_norm runs on a contiguous group; the
// weight and bias gradients are summed over groups last to first, the order in which autograd
// would accumulate the n separate BatchNorm nodes. (With two forwards through one layer before
// a backward, as MoCo v3 does, autograd's sum over the two calls associates differently: equal
// to float rounding, not bitwise.)
//
// Contract: CPU tensors; x (N, C, H, W), fp32 or bf16 (autocast's mix with fp32 parameters),
// contiguous in NCHW or channels-last (each group is then contiguous in the same format);
// weight and bias (C) fp32; group_means / group_vars (n * C) fp32, group-major, updated in place
// as each group's running statistics. Callers take the split + cat path otherwise.
#ifndef BACKENDS_TORCH_CONSECUTIVE_BATCH_NORM_H_
#define BACKENDS_TORCH_CONSECUTIVE_BATCH_NORM_H_

#include <torch/torch.h>

namespace moco::torch_backend {

// Whether ConsecutiveGroupBatchNorm accepts x (see the contract above).
bool ConsecutiveGroupBatchNormApplies(const torch::Tensor& x);

torch::Tensor ConsecutiveGroupBatchNorm(const torch::Tensor& x, const torch::Tensor& weight,
                                        const torch::Tensor& bias, torch::Tensor& group_means,
                                        torch::Tensor& group_vars, int64_t num_splits,
                                        double momentum, double eps);

}  // namespace moco::torch_backend

#endif  // BACKENDS_TORCH_CONSECUTIVE_BATCH_NORM_H_
