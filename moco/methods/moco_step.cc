#include "moco/methods/moco_step.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "moco/core/status_macros.h"

namespace moco {
namespace {

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace

std::vector<int64_t> RandomPermutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> perm(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) perm[i] = i;
  uint64_t state = seed;
  for (int64_t i = n - 1; i > 0; --i) {
    // Multiply-shift maps 64 random bits to [0, i] with negligible bias for batch-sized i.
    const uint64_t r = SplitMix64(state);
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
      config_(config) {
  query_.SetBnSplits(config_.bn_splits());
  key_.SetBnSplits(config_.bn_splits());
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
  if (!std::isfinite(loss.loss)) {
    return absl::FailedPreconditionError(
        absl::StrCat("contrastive loss is ", loss.loss,
                     " (diverged: try a lower optimizer.lr or a higher moco.temperature)"));
  }
  RETURN_IF_ERROR(query_.Backward(*loss.grad_q));
  return Pass{std::move(loss), std::move(k)};
}

absl::StatusOr<MocoStepResult> MocoStep::Run(const Tensor& view1, const Tensor& view2, float lr,
                                             float key_momentum, uint64_t shuffle_seed) {
  if (view1.shape() != view2.shape()) {
    return absl::InvalidArgumentError("the two views of a batch must have the same shape");
  }
  query_.ZeroGrad();
  RETURN_IF_ERROR(key_.MomentumUpdateFrom(query_, key_momentum));

  MocoStepResult result;
  if (!config_.symmetric_loss()) {
    ASSIGN_OR_RETURN(Pass pass, ContrastivePass(view1, view2, shuffle_seed));
    RETURN_IF_ERROR(optimizer_.Step(lr));
    RETURN_IF_ERROR(queue_.Enqueue(*pass.keys));
    result.loss = pass.loss.loss;
    result.top1 = pass.loss.top1;
    result.logits = pass.loss.logits;
    return result;
  }
  // Both terms see the same queue; gradients of the two backward passes accumulate.
  ASSIGN_OR_RETURN(Pass p12, ContrastivePass(view1, view2, shuffle_seed));
  ASSIGN_OR_RETURN(Pass p21, ContrastivePass(view2, view1, ~shuffle_seed));
  RETURN_IF_ERROR(optimizer_.Step(lr));
  RETURN_IF_ERROR(queue_.Enqueue(*p21.keys));  // k1
  RETURN_IF_ERROR(queue_.Enqueue(*p12.keys));  // k2
  result.loss = p12.loss.loss + p21.loss.loss;
  result.top1 = 0.5f * (p12.loss.top1 + p21.loss.top1);
  result.logits = p12.loss.logits;
  return result;
}

}  // namespace moco
