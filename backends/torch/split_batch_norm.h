// SplitBatchNorm2d: BatchNorm2d whose training-mode statistics are computed per group of the
// batch, emulating MoCo's shuffling BN across GPUs on one process.
//
//   SplitBatchNorm2d bn(64);            // weight, bias, running_mean, running_var,
//   bn->set_num_splits(8);              // num_batches_tracked: torchvision's names
//   torch::Tensor y = bn->forward(x);   // x: (N, 64, H, W), N divisible by 8 in training
//
// Training mode, n splits: the batch is cut into n groups of N/n consecutive samples (group g
// is samples [g*N/n, (g+1)*N/n)), each normalized with its own mean and biased variance, exactly
// as n GPUs each running torch BatchNorm2d on their share would. Running statistics become
//   running = (1 - momentum) * running + momentum * mean_g(stat_g),
// the mean over groups of what each group's update would give, with stat_g the group's mean and
// its unbiased variance (as torch does). num_batches_tracked is incremented once per forward.
// Eval mode: the running statistics are used and the split count is ignored.
//
// SplitLayout::kInterleaved instead puts sample i in group i % n (the official MoCo code's
// layout). It is a free view of an NCHW batch, one kernel call for all groups; ResNet uses it
// internally in NCHW and reorders its input so that its own groups are consecutive (see
// resnet.h). Consecutive groups on CPU write each group's result into one output in place
// (consecutive_batch_norm.h); elsewhere (CUDA, non-contiguous input) they cost a split and a
// cat, one more copy of the activation in the forward and one in the backward.
//
// SyncBatchNorm (MoCo v3 under data parallelism): with set_sync_group(group) of world > 1,
// training mode normalizes over the union of every rank's batch (sync_batch_norm.h); the split
// count must then be 1.
//
// momentum 0.1 and eps 1e-5, as torch's defaults. Shape errors and a batch that the split count
// does not divide throw c10::Error (the backend's entry points turn it into absl::Status).
#ifndef BACKENDS_TORCH_SPLIT_BATCH_NORM_H_
#define BACKENDS_TORCH_SPLIT_BATCH_NORM_H_

#include <torch/torch.h>

#include <cstdint>

#include "moco/core/communicator.h"

namespace moco::torch_backend {

// Which samples of a training batch of N = n * M form a BN group.
enum class SplitLayout {
  kConsecutive,  // group g = samples [g * M, (g + 1) * M), as n GPUs would see them
  kInterleaved,  // group g = samples g, g + n, g + 2n, ...
};

class SplitBatchNorm2dImpl : public torch::nn::Cloneable<SplitBatchNorm2dImpl> {
 public:
  static constexpr double kMomentum = 0.1;
  static constexpr double kEps = 1e-5;

  // num_features: C, the channel count of the (N, C, H, W) input; must be positive.
  explicit SplitBatchNorm2dImpl(int64_t num_features);

  // (Re)creates the parameters (weight 1, bias 0) and buffers (running_mean 0, running_var 1,
  // num_batches_tracked 0). Called by the constructor and by clone().
  void reset() override;

  // Normalizes x (N, C, H, W); see the file comment for training and eval semantics.
  torch::Tensor forward(const torch::Tensor& x);

  // Number of groups the training batch is split into, and which samples form a group; must be
  // >= 1. Default 1 (plain BN).
  void set_num_splits(int64_t num_splits, SplitLayout layout = SplitLayout::kConsecutive);
  int64_t num_splits() const { return num_splits_; }
  SplitLayout split_layout() const { return layout_; }

  int64_t num_features() const { return num_features_; }

  // Training statistics over every rank of `group` (not owned; null or world 1: this
  // process's batch only). Requires num_splits 1 when set.
  void set_sync_group(Communicator* group);
  Communicator* sync_group() const { return sync_group_; }

  void pretty_print(std::ostream& stream) const override;

  torch::Tensor weight;
  torch::Tensor bias;
  torch::Tensor running_mean;
  torch::Tensor running_var;
  torch::Tensor num_batches_tracked;

 private:
  int64_t num_features_;
  int64_t num_splits_ = 1;
  SplitLayout layout_ = SplitLayout::kConsecutive;
  Communicator* sync_group_ = nullptr;
};

TORCH_MODULE(SplitBatchNorm2d);

}  // namespace moco::torch_backend

#endif  // BACKENDS_TORCH_SPLIT_BATCH_NORM_H_
