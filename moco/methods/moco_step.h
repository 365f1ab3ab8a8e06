// The MoCo training step, written once against the backend interfaces (He et al. 2019, Alg. 1;
// symmetric variant of the CIFAR recipe):
//
//   q = normalize(f_q(x_q))                           query forward, recorded for backward
//   f_k.params = m * f_k.params + (1 - m) * f_q.params  momentum update (no grad)
//   k = unshuffle(normalize(f_k(shuffle(x_k))))      shuffling BN (no grad)
//   loss = InfoNCE(q, k, queue, T)                   positive logit first
//   backward; SGD step on f_q; enqueue k, dequeue the oldest
//
// With symmetric_loss: loss = InfoNCE(q1, k2) + InfoNCE(q2, k1), both key batches enqueued
// (k1 then k2). BN statistics are computed over moco.bn_splits groups in both encoders.
//
// Data parallel (a Communicator of world W > 1; official MoCo's DDP semantics): each rank holds
// n = N / W images of the global batch N (rank r: rows [r n, (r + 1) n) of it).
//   - shuffling BN across processes (_batch_shuffle_ddp / _batch_unshuffle_ddp): the key images
//     are all-gathered (N), permuted by one global permutation from the step seed (the same on
//     every rank), rank r runs rows [r n, (r + 1) n) of the permuted batch through the key
//     encoder (its own BN statistics, further split into moco.bn_splits groups), the keys are
//     all-gathered and unpermuted; rank r's loss uses its own n rows;
//   - the loss is InfoNCE on the local batch; the reported loss and top-1 are the means over the
//     ranks (the global batch's), and a non-finite loss stops every rank at the same step;
//   - after the backward the query gradients are averaged over the ranks (one flat bucket, one
//     all-reduce, not overlapped with the backward), so the update is the global batch's;
//   - every rank enqueues all N keys (global order), so all queues stay identical;
//   - after the update both encoders' BN running statistics are averaged over the ranks (as
//     bn_splits averages them over its groups), so every rank's whole state is identical.
// Hence world W with local batch n and bn_splits s computes what one process computes with
// batch N = W n and bn_splits W s, up to float summation order.
//
//   MocoStep step(*backend, *query, *key, *queue, *loss, *sgd, config.moco());
//   ASSIGN_OR_RETURN(MocoStepResult r, step.Run(*view1, *view2, lr, m, shuffle_seed));
//   ASSIGN_OR_RETURN(MocoStepResult r, step.Run(*view1, *view2, lr, m, shuffle_seed, &comm));
#ifndef MOCO_METHODS_MOCO_STEP_H_
#define MOCO_METHODS_MOCO_STEP_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "moco/core/backend.h"
#include "moco/core/communicator.h"
#include "moco/config/config.pb.h"
#include "moco/methods/gradient_sync.h"
#include "moco/methods/loss_scaling.h"

namespace moco {

struct MocoStepResult {
  float loss = 0;       // the optimized loss (the sum of both terms when symmetric)
  float top1 = 0;       // fraction of queries whose positive key scored highest (mean of terms)
  // Logits of the (first) loss term, (N, 1 + K), for tests and debugging; data parallel: this
  // rank's rows.
  TensorPtr logits;
};

class MocoStep {
 public:
  // References must outlive the step. `optimizer` is bound to `query`.
  MocoStep(Backend& backend, Encoder& query, Encoder& key, KeyQueue& queue,
           ContrastiveLoss& loss, Optimizer& optimizer, const MocoConfig& config);

  // One step on two augmented views (N, C, H, W) of the same N images.
  // `shuffle_seed` determines the shuffling-BN permutations (derive it from the run's seed and
  // the global step, so a resumed run shuffles exactly as an uninterrupted one).
  // A non-finite loss returns FailedPrecondition before the optimizer step and the enqueue.
  // `communicator` (not owned): null or world 1 runs the single-process step unchanged;
  // otherwise the data-parallel step above (every rank calls Run with the same arguments but
  // its own views).
  // `gradient_bucket_bytes`: the size of the gradient buckets all-reduced during the
  // backward (data parallel only; moco/core/gradient_averager.h).
  // Dynamic loss scaling (moco/methods/loss_scaling.h; not owned, null: none): every backward
  // gets the scaled loss gradient; a step whose unscaled gradients are not all finite skips its
  // optimizer update (the momentum update and the enqueue still happen, as with GradScaler).
  void UseLossScaling(LossScaling* scaling) { loss_scaling_ = scaling; }

  absl::StatusOr<MocoStepResult> Run(const Tensor& view1, const Tensor& view2, float lr,
                                     float key_momentum, uint64_t shuffle_seed,
                                     Communicator* communicator = nullptr,
                                     int64_t gradient_bucket_bytes = kDefaultGradientBucketBytes);

 private:
  struct Pass {
    ContrastiveLossResult loss;
    TensorPtr keys;  // to enqueue: this batch's keys (data parallel: the global batch's)
  };
  // Query forward on x_q, shuffled key forward on x_k, loss, backward into the query encoder.
  absl::StatusOr<Pass> ContrastivePass(const Tensor& x_q, const Tensor& x_k, uint64_t seed);
  // The same across the ranks of `comm` (world > 1). `last_backward`: this pass's backward is
  // the step's last, so the gradient all-reduce starts during it.
  absl::StatusOr<Pass> DistributedContrastivePass(const Tensor& x_q, const Tensor& x_k,
                                                  uint64_t seed, Communicator& comm,
                                                  bool last_backward);
  absl::StatusOr<Pass> AnyContrastivePass(const Tensor& x_q, const Tensor& x_k, uint64_t seed,
                                          Communicator* comm, bool last_backward);
  absl::Status CheckFinite(float loss) const;
  // query_.Backward of the loss gradient, scaled when loss scaling is on.
  absl::Status QueryBackward(const TensorPtr& grad_q);

  Backend& backend_;
  Encoder& query_;
  Encoder& key_;
  KeyQueue& queue_;
  ContrastiveLoss& loss_;
  Optimizer& optimizer_;
  MocoConfig config_;
  GradientSync gradient_sync_;
  LossScaling* loss_scaling_ = nullptr;
  int64_t gradient_bucket_bytes_ = kDefaultGradientBucketBytes;  // of the running step
};

// A uniformly random permutation of [0, n) determined by `seed` (Fisher-Yates on SplitMix64,
// identical on every platform and backend).
std::vector<int64_t> RandomPermutation(int64_t n, uint64_t seed);
std::vector<int64_t> InversePermutation(const std::vector<int64_t>& permutation);

}  // namespace moco

#endif  // MOCO_METHODS_MOCO_STEP_H_
