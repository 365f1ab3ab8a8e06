// A self-supervised training method (MoCo v1/v2's queue step today; MoCo v3 later): everything a
// run trains, behind one step call, so the Trainer (moco/pretrain/trainer.h) never names a
// method. Implementations live in moco/methods/ and register by name
// (moco/core/method_registry.h); `moco.method` in the config selects one.
//
//   ASSIGN_OR_RETURN(auto method, CreateTrainingMethod(config, *backend));
//   ASSIGN_OR_RETURN(MethodStepResult r, method->Step(*view1, *view2, context));
#ifndef MOCO_CORE_TRAINING_METHOD_H_
#define MOCO_CORE_TRAINING_METHOD_H_

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "moco/core/communicator.h"
#include "moco/core/encoder.h"
#include "moco/core/host_array.h"
#include "moco/core/tensor.h"

namespace moco {

// What the schedule gives one step; the method uses what it needs.
struct StepContext {
  float lr = 0;
  float key_momentum = 0;  // momentum-encoder coefficient m at this step
  // Seed of this step's random choices (the shuffling-BN permutation): a function of the run's
  // seed and the global step, so a resumed run draws what an uninterrupted one does.
  uint64_t step_seed = 0;
  // Data parallelism: the process group this step runs in (not owned). Null or world 1: the
  // single-process step, bit for bit. In world W the views are this rank's batch / W images
  // and the method synchronizes through it (every rank calls Step with the same context).
  Communicator* communicator = nullptr;
  // The size of the gradient buckets all-reduced during the backward (run.gradient_bucket_mb).
  int64_t gradient_bucket_bytes = int64_t{25} << 20;
};

struct MethodStepResult {
  float loss = 0;  // the optimized loss (data parallel: averaged over the ranks)
  float top1 = 0;  // contrastive accuracy: share of queries whose positive scored highest
  // Loss scaling only (backend.loss_scaling): the scale this step's loss gradient was multiplied
  // by, whether its optimizer update was skipped (an inf or nan gradient), and the run's
  // skipped updates so far, this one included.
  std::optional<float> loss_scale;
  bool skipped_update = false;
  int64_t skipped_steps = 0;
};

class TrainingMethod {
 public:
  virtual ~TrainingMethod() = default;

  // One optimizer step on two augmented views (N, C, H, W) of the same N images. A non-finite
  // loss returns FailedPrecondition and leaves the trained state as it was before the step's
  // optimizer update.
  virtual absl::StatusOr<MethodStepResult> Step(const Tensor& view1, const Tensor& view2,
                                                const StepContext& context) = 0;

  // The encoder whose backbone is evaluated (kNN monitor) and exported for downstream use.
  virtual Encoder& evaluated_encoder() = 0;

  // Everything the method trains or keeps (encoders, queue, optimizer state) as named arrays:
  // the checkpoint's contents. Import checks every name and shape and names the first bad one.
  virtual absl::StatusOr<NamedArrays> ExportState() const = 0;
  virtual absl::Status ImportState(const NamedArrays& state) = 0;
};

}  // namespace moco

#endif  // MOCO_CORE_TRAINING_METHOD_H_
