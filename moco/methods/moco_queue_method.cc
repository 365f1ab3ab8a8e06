#include "moco/methods/moco_queue_method.h"

#include "moco/core/method_registry.h"
#include "moco/core/status_macros.h"

namespace moco {

absl::StatusOr<std::unique_ptr<TrainingMethod>> MocoQueueMethod::Create(
    const ExperimentConfig& config, Backend& backend) {
  ASSIGN_OR_RETURN(std::unique_ptr<MocoQueueState> state, MocoQueueState::Create(config, backend));
  return std::unique_ptr<TrainingMethod>(new MocoQueueMethod(std::move(state)));
}

absl::StatusOr<MethodStepResult> MocoQueueMethod::Step(const Tensor& view1, const Tensor& view2,
                                                       const StepContext& context) {
  ASSIGN_OR_RETURN(MocoStepResult r,
                   step_.Run(view1, view2, context.lr, context.key_momentum, context.step_seed,
                             context.communicator, context.gradient_bucket_bytes));
  MethodStepResult result{r.loss, r.top1};
  state_->loss_scaling.Report(result);
  return result;
}

MOCO_REGISTER_METHOD(moco_v2, MocoQueueMethod::Create);
MOCO_REGISTER_METHOD(moco_v1, MocoQueueMethod::Create);

}  // namespace moco
