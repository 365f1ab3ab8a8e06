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
// whole batch (SyncBN across ranks: bn_splits is 1). The reported top1 averages the two terms.
//
// One process only: data-parallel v3 needs SyncBatchNorm across ranks (not implemented; the
// validator refuses moco_v3 with WORLD_SIZE > 1).
//
// Checkpoint arrays: "query/<param>" (with "query/predictor.*"), "key/<param>",
// "optimizer/<...>" (the optimizer's own names).
#ifndef MOCO_METHODS_MOCO_V3_METHOD_H_
#define MOCO_METHODS_MOCO_V3_METHOD_H_

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "moco/config/config.pb.h"
#include "moco/core/backend.h"
#include "moco/core/training_method.h"

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
  // ctr(q(x_q), keys) with its backward into the query encoder; the loss term and its top1.
  absl::StatusOr<ContrastiveLossResult> Term(const Tensor& x_q, const Tensor& keys);

  std::unique_ptr<Encoder> query_;
  std::unique_ptr<Encoder> key_;
  std::unique_ptr<ContrastiveLoss> loss_;
  std::unique_ptr<Optimizer> optimizer_;
  float temperature_ = 1.0f;
};

}  // namespace moco

#endif  // MOCO_METHODS_MOCO_V3_METHOD_H_
