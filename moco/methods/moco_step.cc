#include "moco/methods/moco_step.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "moco/core/split_mix.h"
#include "moco/core/status_macros.h"

namespace moco {

std::vector<int64_t> RandomPermutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> perm(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) perm[i] = i;
  uint64_t state = seed;
  for (int64_t i = n - 1; i > 0; --i) {
    // Multiply-shift maps 64 random bits to [0, i] with negligible bias for batch-sized i.
    const uint64_t r = SplitMix64Next(state);
    const int64_t j = static_cast<int64_t>(
        (static_cast<unsigned __int128>(r) * static_cast<uint64_t>(i + 1)) >> 64);
    std::swap(perm[i], perm[j]);
  }
  return perm;
}

std::vector<int64_t> InversePermutation(const std::vector<int64_t>& permutation) {
  std::vector<int64_t> inverse(permutation.size());
  for (size_t i = 0; i < permutation.size(); ++i) inverse[permutation[i]] = i;
  return inverse;
}

MocoStep::MocoStep(Backend& backend, Encoder& query, Encoder& key, KeyQueue& queue,
                   ContrastiveLoss& loss, Optimizer& optimizer, const MocoConfig& config)
    : backend_(backend),
      query_(query),
      key_(key),
      queue_(queue),
      loss_(loss),
      optimizer_(optimizer),
      config_(config) {}

absl::Status MocoStep::CheckFinite(float loss) const {
  if (std::isfinite(loss)) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("contrastive loss is ", loss,
                   " (diverged: try a lower optimizer.lr or a higher moco.temperature)"));
}

absl::Status MocoStep::QueryBackward(const TensorPtr& grad_q) {
  if (loss_scaling_ == nullptr) return query_.Backward(*grad_q);
  ASSIGN_OR_RETURN(TensorPtr scaled, loss_scaling_->ScaleLossGradient(backend_, grad_q));
  return query_.Backward(*scaled);
}

absl::StatusOr<MocoStep::Pass> MocoStep::ContrastivePass(const Tensor& x_q, const Tensor& x_k,
                                                         uint64_t seed) {
  ASSIGN_OR_RETURN(TensorPtr q, query_.Forward(x_q, /*train_bn=*/true, /*record=*/true));
  // Shuffling BN: the key batch is permuted before the BN groups are formed, so a query and its
  // positive key never share BN statistics; the permutation is undone on the output.
  const std::vector<int64_t> perm = RandomPermutation(x_k.shape()[0], seed);
  ASSIGN_OR_RETURN(TensorPtr x_k_shuffled, backend_.GatherRows(x_k, perm));
  ASSIGN_OR_RETURN(TensorPtr k_shuffled,
                   key_.Forward(*x_k_shuffled, /*train_bn=*/true, /*record=*/false));
  ASSIGN_OR_RETURN(TensorPtr k, backend_.GatherRows(*k_shuffled, InversePermutation(perm)));
  ASSIGN_OR_RETURN(ContrastiveLossResult loss,
                   loss_.Compute(*q, *k, queue_.keys(), config_.temperature()));
  RETURN_IF_ERROR(CheckFinite(loss.loss));
  RETURN_IF_ERROR(QueryBackward(loss.grad_q));
  return Pass{std::move(loss), std::move(k)};
}

absl::StatusOr<MocoStep::Pass> MocoStep::DistributedContrastivePass(const Tensor& x_q,
                                                                    const Tensor& x_k,
                                                                    uint64_t seed,
                                                                    Communicator& comm,
                                                                    bool last_backward) {
  const int64_t n = x_k.shape()[0];
  const int64_t world = comm.world_size();
  const int64_t first = comm.rank() * n;  // this rank's rows of the global batch
  ASSIGN_OR_RETURN(TensorPtr q, query_.Forward(x_q, /*train_bn=*/true, /*record=*/true));
  // Shuffling BN across processes: the global key batch, one global permutation (a function of
  // the step seed, so the same on every rank), this rank's slice of it through the key encoder.
  // AllGather takes a shared handle; `x_k` is borrowed for the call (no copy).
  const TensorPtr x_k_borrowed(TensorPtr(), const_cast<Tensor*>(&x_k));
  ASSIGN_OR_RETURN(TensorPtr x_all, comm.AllGather(x_k_borrowed));
  const std::vector<int64_t> perm = RandomPermutation(n * world, seed);
  ASSIGN_OR_RETURN(TensorPtr x_mine,
                   backend_.GatherRows(*x_all, std::vector<int64_t>(perm.begin() + first,
                                                                    perm.begin() + first + n)));
  x_all.reset();
  ASSIGN_OR_RETURN(TensorPtr k_mine, key_.Forward(*x_mine, /*train_bn=*/true, /*record=*/false));
  // Row j of the gathered keys is the key of global image perm[j]; undo the permutation for the
  // whole batch (to enqueue) and for this rank's rows (for the loss).
  ASSIGN_OR_RETURN(TensorPtr k_shuffled, comm.AllGather(k_mine));
  const std::vector<int64_t> inverse = InversePermutation(perm);
  ASSIGN_OR_RETURN(TensorPtr k_all, backend_.GatherRows(*k_shuffled, inverse));
  ASSIGN_OR_RETURN(TensorPtr k,
                   backend_.GatherRows(*k_shuffled, std::vector<int64_t>(
                                                        inverse.begin() + first,
                                                        inverse.begin() + first + n)));
  ASSIGN_OR_RETURN(ContrastiveLossResult loss,
                   loss_.Compute(*q, *k, queue_.keys(), config_.temperature()));
  // The global batch's loss and top-1 (equal shares): every rank reports, and judges, the same.
  float stats[2] = {loss.loss, loss.top1};
  RETURN_IF_ERROR(comm.AllReduceSumHost(absl::MakeSpan(stats)));
  loss.loss = stats[0] / static_cast<float>(world);
  loss.top1 = stats[1] / static_cast<float>(world);
  RETURN_IF_ERROR(CheckFinite(loss.loss));
  if (last_backward) {
    RETURN_IF_ERROR(gradient_sync_.BeforeLastBackward(backend_, query_, &comm,
                                                      gradient_bucket_bytes_));
  }
  RETURN_IF_ERROR(QueryBackward(loss.grad_q));
  return Pass{std::move(loss), std::move(k_all)};
}

absl::StatusOr<MocoStep::Pass> MocoStep::AnyContrastivePass(const Tensor& x_q, const Tensor& x_k,
                                                            uint64_t seed, Communicator* comm,
                                                            bool last_backward) {
  if (comm == nullptr || comm->world_size() == 1) return ContrastivePass(x_q, x_k, seed);
  return DistributedContrastivePass(x_q, x_k, seed, *comm, last_backward);
}

absl::StatusOr<MocoStepResult> MocoStep::Run(const Tensor& view1, const Tensor& view2, float lr,
                                             float key_momentum, uint64_t shuffle_seed,
                                             Communicator* communicator,
                                             int64_t gradient_bucket_bytes) {
  if (view1.shape() != view2.shape()) {
    return absl::InvalidArgumentError("the two views of a batch must have the same shape");
  }
  const bool distributed = communicator != nullptr && communicator->world_size() > 1;
  gradient_bucket_bytes_ = gradient_bucket_bytes;
  query_.ZeroGrad();
  RETURN_IF_ERROR(key_.MomentumUpdateFrom(query_, key_momentum));

  MocoStepResult result;
  std::vector<TensorPtr> to_enqueue;
  if (!config_.symmetric_loss()) {
    ASSIGN_OR_RETURN(Pass pass, AnyContrastivePass(view1, view2, shuffle_seed, communicator,
                                                       /*last_backward=*/true));
    result.loss = pass.loss.loss;
    result.top1 = pass.loss.top1;
    result.logits = pass.loss.logits;
    to_enqueue.push_back(std::move(pass.keys));
  } else {
    // Both terms see the same queue; gradients of the two backward passes accumulate.
    ASSIGN_OR_RETURN(Pass p12, AnyContrastivePass(view1, view2, shuffle_seed, communicator,
                                                  /*last_backward=*/false));
    ASSIGN_OR_RETURN(Pass p21, AnyContrastivePass(view2, view1, ~shuffle_seed, communicator,
                                                  /*last_backward=*/true));
    result.loss = p12.loss.loss + p21.loss.loss;
    result.top1 = 0.5f * (p12.loss.top1 + p21.loss.top1);
    result.logits = p12.loss.logits;
    to_enqueue.push_back(std::move(p21.keys));  // k1
    to_enqueue.push_back(std::move(p12.keys));  // k2
  }
  // Waits for the gradient all-reduce started during the last backward (data parallel only).
  RETURN_IF_ERROR(gradient_sync_.Finish());
  bool update = true;  // false: loss scaling found an inf or nan gradient, the update is skipped
  if (loss_scaling_ != nullptr) {
    ASSIGN_OR_RETURN(update, loss_scaling_->UnscaleAndUpdate(query_));
  }
  if (update) RETURN_IF_ERROR(optimizer_.Step(lr));
  for (const TensorPtr& keys : to_enqueue) RETURN_IF_ERROR(queue_.Enqueue(*keys));
  if (distributed) {
    RETURN_IF_ERROR(
        backend_.AverageAcrossRanks(query_, RankAveraged::kBatchNormStatistics, *communicator));
    RETURN_IF_ERROR(
        backend_.AverageAcrossRanks(key_, RankAveraged::kBatchNormStatistics, *communicator));
  }
  return result;
}

}  // namespace moco
