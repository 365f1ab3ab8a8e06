// MoCo v3 (Chen, Xie, He, arXiv 2104.02057) as a TrainingMethod, registered as "moco_v3".
//
// No queue. The query encoder is backbone + projector + predictor, the key (momentum) encoder
// backbone + projector, initialized as a copy of the query's and moved by
//   key = m * key + (1 - m) * query   (parameters only, before the keys are computed).
// One step on two views x1, x2 of the same images:
//   k1, k2 = key(x1), key(x2)            (no gradient, BN in training mode over the batch)
//   q1, q2 = query(x1), query(x2)
//   loss   = ctr(q1, k2) + ctr(q2, k1),  ctr = 2T * CrossEntropy(q . k^T / T, positives)
// with L2-normalized q and k (ContrastiveLoss::ComputeInBatch). BN statistics are those of the
// whole batch (bn_splits is 1). The reported top1 averages the two terms.
//
// Data parallel (StepContext::communicator of world W), as moco-v3's DDP code: every BN of both
// encoders is a SyncBatchNorm over the ranks (Encoder::SetBatchNormGroup), so statistics are
// those of the global batch; each rank's queries score against the keys of all ranks
// (all-gathered, positives at rank * N + i); the query gradients are averaged over the ranks.
// World W with local batch N therefore equals one process with batch W * N, up to float
// rounding (tests/data_parallel_test.cc). Loss and top1 are averaged over the ranks.
//
// Checkpoint arrays: "query/<param>" (with "query/predictor.*"), "key/<param>",
// "optimizer/<...>" (the optimizer's own names), and "loss_scale/..." with loss scaling
// (moco/methods/loss_scaling.h).
#ifndef MOCO_METHODS_MOCO_V3_METHOD_H_
#define MOCO_METHODS_MOCO_V3_METHOD_H_

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "moco/config/config.pb.h"
#include "moco/core/backend.h"
#include "moco/core/training_method.h"
#include "moco/methods/gradient_sync.h"
#include "moco/methods/loss_scaling.h"

namespace moco {

class MocoV3Method final : public TrainingMethod {
 public:
  static absl::StatusOr<std::unique_ptr<TrainingMethod>> Create(const ExperimentConfig& config,
                                                                Backend& backend);

  absl::StatusOr<MethodStepResult> Step(const Tensor& view1, const Tensor& view2,
                                        const StepContext& context) override;
  Encoder& evaluated_encoder() override { return *query_; }
  absl::StatusOr<NamedArrays> ExportState() const override;
  absl::Status ImportState(const NamedArrays& state) override;

 private:
  MocoV3Method() = default;
  // ctr(q(x_q), keys) with its backward into the query encoder; the loss term and its top1
  // (data parallel: averaged over the ranks of `comm`, checked for finiteness before the
  // backward so that every rank stops at the same point).
  absl::StatusOr<ContrastiveLossResult> Term(const Tensor& x_q, const Tensor& keys,
                                             int64_t positive_offset, Communicator* comm,
                                             bool last_backward, int64_t bucket_bytes);
  // Makes `comm` (world > 1) the SyncBatchNorm group of both encoders, or none.
  absl::Status UseBatchNormGroup(Communicator* comm);

  Backend* backend_ = nullptr;        // not owned; outlives the method
  Communicator* bn_group_ = nullptr;  // the encoders' SyncBatchNorm group; null: none
  std::unique_ptr<Encoder> query_;
  std::unique_ptr<Encoder> key_;
  std::unique_ptr<ContrastiveLoss> loss_;
  std::unique_ptr<Optimizer> optimizer_;
  GradientSync gradient_sync_;
  LossScaling loss_scaling_;  // backend.loss_scaling (off: every call is the identity)
  float temperature_ = 1.0f;
};

}  // namespace moco

#endif  // MOCO_METHODS_MOCO_V3_METHOD_H_
