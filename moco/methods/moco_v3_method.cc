#include "moco/methods/moco_v3_method.h"

#include <cmath>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "moco/core/method_registry.h"
#include "moco/core/optimizer_factory.h"
#include "moco/core/status_macros.h"
#include "moco/methods/state_prefix.h"

namespace moco {
namespace {

constexpr char kQuery[] = "query/";
constexpr char kKey[] = "key/";
constexpr char kOptimizer[] = "optimizer/";
constexpr char kPredictor[] = "predictor.";

}  // namespace

absl::StatusOr<std::unique_ptr<TrainingMethod>> MocoV3Method::Create(
    const ExperimentConfig& config, Backend& backend) {
  if (config.model().predictor_hidden_dim() <= 0 || config.model().projector_hidden_dim() <= 0) {
    return absl::InvalidArgumentError(
        "moco.method \"moco_v3\" needs the v3 heads: model.projector_hidden_dim and "
        "model.predictor_hidden_dim > 0 (v3: 4096)");
  }
  std::unique_ptr<MocoV3Method> method(new MocoV3Method);
  method->backend_ = &backend;
  method->temperature_ = config.moco().temperature();
  ASSIGN_OR_RETURN(method->loss_scaling_, LossScaling::FromConfig(config.backend()));
  const uint64_t seed = config.run().seed();
  EncoderOptions query_options;  // bn_splits 1: BN over the whole batch
  ASSIGN_OR_RETURN(method->query_, backend.CreateEncoder(config.model(), seed, query_options));
  EncoderOptions key_options;
  key_options.with_predictor = false;
  ASSIGN_OR_RETURN(method->key_, backend.CreateEncoder(config.model(), seed, key_options));
  // The key encoder starts as a copy of the query's backbone and projector.
  ASSIGN_OR_RETURN(NamedArrays query_state, method->query_->ExportState());
  NamedArrays shared;
  for (auto& [name, array] : query_state) {
    if (!absl::StartsWith(name, kPredictor)) shared.emplace(name, std::move(array));
  }
  RETURN_IF_ERROR(method->key_->ImportState(shared));
  ASSIGN_OR_RETURN(method->loss_, backend.CreateInfoNceLoss());
  ASSIGN_OR_RETURN(method->optimizer_,
                   CreateOptimizer(backend, *method->query_, config.optimizer()));
  return std::unique_ptr<TrainingMethod>(std::move(method));
}

absl::Status MocoV3Method::UseBatchNormGroup(Communicator* comm) {
  Communicator* group = comm != nullptr && comm->world_size() > 1 ? comm : nullptr;
  if (group == bn_group_) return absl::OkStatus();
  RETURN_IF_ERROR(AnnotateStatus(query_->SetBatchNormGroup(group), "query encoder"));
  RETURN_IF_ERROR(AnnotateStatus(key_->SetBatchNormGroup(group), "key encoder"));
  bn_group_ = group;
  return absl::OkStatus();
}

absl::StatusOr<ContrastiveLossResult> MocoV3Method::Term(const Tensor& x_q, const Tensor& keys,
                                                         int64_t positive_offset,
                                                         Communicator* comm,
                                                         bool last_backward,
                                                         int64_t bucket_bytes) {
  ASSIGN_OR_RETURN(TensorPtr q, query_->Forward(x_q, /*train_bn=*/true, /*record=*/true));
  ASSIGN_OR_RETURN(ContrastiveLossResult r,
                   loss_->ComputeInBatch(*q, keys, positive_offset, temperature_,
                                         /*loss_scale=*/2 * temperature_));
  if (comm != nullptr) {
    float values[2] = {r.loss, r.top1};
    RETURN_IF_ERROR(comm->AllReduceSumHost(absl::MakeSpan(values)));
    r.loss = values[0] / comm->world_size();
    r.top1 = values[1] / comm->world_size();
  }
  if (!std::isfinite(r.loss)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "contrastive loss is ", r.loss, " (diverged: try a lower optimizer.lr)"));
  }
  if (last_backward) {
    RETURN_IF_ERROR(gradient_sync_.BeforeLastBackward(*backend_, *query_, comm, bucket_bytes));
  }
  ASSIGN_OR_RETURN(TensorPtr grad_q, loss_scaling_.ScaleLossGradient(*backend_, r.grad_q));
  RETURN_IF_ERROR(query_->Backward(*grad_q));
  return r;
}

absl::StatusOr<MethodStepResult> MocoV3Method::Step(const Tensor& view1, const Tensor& view2,
                                                    const StepContext& context) {
  if (view1.shape() != view2.shape()) {
    return absl::InvalidArgumentError("the two views of a batch must have the same shape");
  }
  RETURN_IF_ERROR(UseBatchNormGroup(context.communicator));
  Communicator* comm = bn_group_;  // null in one process
  query_->ZeroGrad();
  RETURN_IF_ERROR(key_->MomentumUpdateFrom(*query_, context.key_momentum));
  ASSIGN_OR_RETURN(TensorPtr k1, key_->Forward(view1, /*train_bn=*/true, /*record=*/false));
  ASSIGN_OR_RETURN(TensorPtr k2, key_->Forward(view2, /*train_bn=*/true, /*record=*/false));
  int64_t offset = 0;  // where this rank's positives sit among the keys
  if (comm != nullptr) {
    ASSIGN_OR_RETURN(k1, comm->AllGather(k1));
    ASSIGN_OR_RETURN(k2, comm->AllGather(k2));
    offset = comm->rank() * view1.shape()[0];
  }
  // The two terms' gradients accumulate in the query encoder.
  const int64_t bucket_bytes = context.gradient_bucket_bytes;
  ASSIGN_OR_RETURN(ContrastiveLossResult t12,
                   Term(view1, *k2, offset, comm, /*last_backward=*/false, bucket_bytes));
  ASSIGN_OR_RETURN(ContrastiveLossResult t21,
                   Term(view2, *k1, offset, comm, /*last_backward=*/true, bucket_bytes));
  // Waits for the gradient all-reduce started during the second backward (data parallel only).
  RETURN_IF_ERROR(gradient_sync_.Finish());
  // False: loss scaling found an inf or nan gradient; the update is skipped (GradScaler's).
  ASSIGN_OR_RETURN(const bool update, loss_scaling_.UnscaleAndUpdate(*query_));
  if (update) RETURN_IF_ERROR(optimizer_->Step(context.lr));
  MethodStepResult result{t12.loss + t21.loss, 0.5f * (t12.top1 + t21.top1)};
  loss_scaling_.Report(result);
  return result;
}

absl::StatusOr<NamedArrays> MocoV3Method::ExportState() const {
  NamedArrays arrays;
  ASSIGN_OR_RETURN(NamedArrays query_state, query_->ExportState());
  ASSIGN_OR_RETURN(NamedArrays key_state, key_->ExportState());
  AddWithPrefix(query_state, kQuery, arrays);
  AddWithPrefix(key_state, kKey, arrays);
  AddWithPrefix(optimizer_->ExportState(), kOptimizer, arrays);
  loss_scaling_.ExportTo(arrays);
  return arrays;
}

absl::Status MocoV3Method::ImportState(const NamedArrays& arrays) {
  for (const auto& [name, array] : arrays) {
    if (!absl::StartsWith(name, kQuery) && !absl::StartsWith(name, kKey) &&
        !absl::StartsWith(name, kOptimizer) && !absl::StartsWith(name, LossScaling::kPrefix)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unexpected array '", name,
          "' (a moco_v3 state has query/, key/, optimizer/ and, with loss scaling, loss_scale/)"));
    }
  }
  RETURN_IF_ERROR(AnnotateStatus(query_->ImportState(SelectPrefix(arrays, kQuery)), "query encoder"));
  RETURN_IF_ERROR(AnnotateStatus(key_->ImportState(SelectPrefix(arrays, kKey)), "key encoder"));
  RETURN_IF_ERROR(
      AnnotateStatus(optimizer_->ImportState(SelectPrefix(arrays, kOptimizer)), "optimizer"));
  return loss_scaling_.ImportFrom(arrays);
}

MOCO_REGISTER_METHOD(moco_v3, MocoV3Method::Create);

}  // namespace moco
