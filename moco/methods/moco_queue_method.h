// MoCo v1/v2 as a TrainingMethod: the queue step (moco_step.h) over its state
// (moco_queue_state.h). Registered as "moco_v2" (the default) and "moco_v1": one step, since
// the two versions differ only in config (head, augmentation, temperature, schedule).
#ifndef MOCO_METHODS_MOCO_QUEUE_METHOD_H_
#define MOCO_METHODS_MOCO_QUEUE_METHOD_H_

#include <memory>

#include "absl/status/statusor.h"
#include "moco/config/config.pb.h"
#include "moco/core/backend.h"
#include "moco/core/training_method.h"
#include "moco/methods/moco_queue_state.h"
#include "moco/methods/moco_step.h"

namespace moco {

class MocoQueueMethod final : public TrainingMethod {
 public:
  static absl::StatusOr<std::unique_ptr<TrainingMethod>> Create(const ExperimentConfig& config,
                                                                Backend& backend);

  absl::StatusOr<MethodStepResult> Step(const Tensor& view1, const Tensor& view2,
                                        const StepContext& context) override;
  Encoder& evaluated_encoder() override { return *state_->query; }
  absl::StatusOr<NamedArrays> ExportState() const override { return state_->Export(); }
  absl::Status ImportState(const NamedArrays& state) override { return state_->Import(state); }

 private:
  explicit MocoQueueMethod(std::unique_ptr<MocoQueueState> state)
      : state_(std::move(state)), step_(state_->MakeStep()) {}

  std::unique_ptr<MocoQueueState> state_;
  MocoStep step_;  // refers into *state_
};

}  // namespace moco

#endif  // MOCO_METHODS_MOCO_QUEUE_METHOD_H_
