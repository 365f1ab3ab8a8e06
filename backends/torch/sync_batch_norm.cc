#include "backends/torch/sync_batch_norm.h"

#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace moco::torch_backend {
namespace {

// Every dimension but the channel one (1).
std::vector<int64_t> ReducedDims(const torch::Tensor& x) {
  std::vector<int64_t> dims = {0};
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  return dims;
}

// Per-channel values broadcast against x: (C) -> (1, C, 1, ...).
torch::Tensor PerChannel(const torch::Tensor& v, const torch::Tensor& x) {
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[1] = v.size(0);
  return v.view(shape);
}

// x in the statistics' type, fp32 (bf16 activations under autocast: no bf16 rounding of the
// centered values or the gradient terms); a no-op for fp32 x.
torch::Tensor AccumulationCopy(const torch::Tensor& x) { return x.to(torch::kFloat32); }

// Sums `values` (float32, contiguous, on any device) over the ranks through the host.
torch::Tensor AllReduceSumViaHost(const torch::Tensor& values, Communicator& group,
                                  const char* what) {
  torch::Tensor host = values.to(torch::kCPU, torch::kFloat32).contiguous().clone();
  const absl::Status status =
      group.AllReduceSumHost(absl::MakeSpan(host.data_ptr<float>(), host.numel()));
  TORCH_CHECK(status.ok(), "SyncBatchNorm: all-reduce of ", what, " failed: ",
              std::string(status.message()));
  return host.to(values.device());
}

// Every rank's `values` (float32, contiguous, on any device) in rank order, (world, numel),
// through the host.
torch::Tensor AllGatherViaHost(const torch::Tensor& values, Communicator& group,
                               const char* what) {
  const torch::Tensor host = values.to(torch::kCPU, torch::kFloat32).contiguous();
  absl::StatusOr<std::vector<float>> all = group.AllGatherHostFloats(
      absl::MakeConstSpan(host.data_ptr<float>(), host.numel()));
  TORCH_CHECK(all.ok(), "SyncBatchNorm: all-gather of ", what, " failed: ",
              std::string(all.status().message()));
  return torch::from_blob(all->data(), {group.world_size(), host.numel()}, torch::kFloat32)
      .clone()
      .to(values.device());
}

// The normalization with its hand-written backward (the statistics are constants of the
// graph as far as autograd is concerned; backward accounts for them across ranks).
class SyncBatchNormFunction : public torch::autograd::Function<SyncBatchNormFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x,
                               torch::Tensor weight, torch::Tensor bias, torch::Tensor mean,
                               torch::Tensor var, torch::Tensor invstd, double eps,
                               int64_t global_count, int64_t group_ptr) {
    // One fused pass: LibTorch's inference-mode BatchNorm with the global statistics (fp32
    // statistics on bf16 input is its mixed-type kernel), output in x's dtype and layout.
    const torch::Tensor y = torch::batch_norm(x, weight, bias, mean, var, /*training=*/false,
                                              /*momentum=*/0.0, eps, /*cudnn_enabled=*/true);
    ctx->save_for_backward({x, weight, mean, invstd});
    ctx->saved_data["count"] = global_count;
    ctx->saved_data["group"] = group_ptr;
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& x = saved[0];
    const torch::Tensor& weight = saved[1];
    const torch::Tensor mean = PerChannel(saved[2], x);
    const torch::Tensor invstd = PerChannel(saved[3], x);
    const double count = static_cast<double>(ctx->saved_data["count"].toInt());
    auto* group = reinterpret_cast<Communicator*>(ctx->saved_data["group"].toInt());
    const torch::Tensor dy = AccumulationCopy(grads[0]);
    const std::vector<int64_t> dims = ReducedDims(x);
    const torch::Tensor xhat = (AccumulationCopy(x) - mean) * invstd;
    const torch::Tensor sum_dy = dy.sum(dims);
    const torch::Tensor sum_dy_xhat = (dy * xhat).sum(dims);
    const int64_t c = x.size(1);
    const torch::Tensor global = AllReduceSumViaHost(torch::cat({sum_dy, sum_dy_xhat}), *group,
                                                     "the gradient sums");
    const torch::Tensor mean_dy = PerChannel(global.narrow(0, 0, c), x) / count;
    const torch::Tensor mean_dy_xhat = PerChannel(global.narrow(0, c, c), x) / count;
    const torch::Tensor dx =
        (invstd * PerChannel(weight, x) * (dy - mean_dy - xhat * mean_dy_xhat)).to(x.scalar_type());
    return {dx,
            ctx->needs_input_grad(1) ? sum_dy_xhat : torch::Tensor(),
            ctx->needs_input_grad(2) ? sum_dy : torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor()};
  }
};

}  // namespace

torch::Tensor SyncBatchNormTrain(const torch::Tensor& x, const torch::Tensor& weight,
                                 const torch::Tensor& bias, torch::Tensor& running_mean,
                                 torch::Tensor& running_var, double momentum, double eps,
                                 Communicator& group) {
  TORCH_CHECK(x.dim() >= 2, "SyncBatchNorm: expected an (N, C, ...) input, got ", x.dim(), "-d");
  const std::vector<int64_t> dims = ReducedDims(x);
  const int64_t local_count = x.numel() / x.size(1);
  // Every rank's batch has this rank's shape (the collectives' contract).
  const int64_t global_count = local_count * group.world_size();
  TORCH_CHECK(global_count > 1, "SyncBatchNorm: one value per channel over all ranks; the batch "
              "variance is undefined");
  torch::Tensor mean, var;
  {
    // One collective: every rank's per-channel mean m_r and squared deviations M2_r about it,
    // combined as Chan et al.'s parallel variance (equal counts n per rank):
    //   mean = avg_r m_r,   M2 = sum_r M2_r + n * sum_r (m_r - mean)^2.
    // Each rank centers on its own (float) mean, so no E[x^2] - E[x]^2 cancellation.
    torch::NoGradGuard no_grad;
    const torch::Tensor xd = x.detach();
    const torch::Tensor local_mean =
        (xd.sum(dims, /*keepdim=*/false, torch::kDouble) / static_cast<double>(local_count))
            .to(torch::kFloat32);
    const torch::Tensor centered = AccumulationCopy(xd) - PerChannel(local_mean, xd);
    const torch::Tensor local_m2 =
        centered.square().sum(dims, /*keepdim=*/false, torch::kDouble).to(torch::kFloat32);
    const int64_t c = x.size(1);
    const torch::Tensor stats =
        AllGatherViaHost(torch::cat({local_mean, local_m2}), group, "the channel statistics")
            .to(torch::kDouble);
    const torch::Tensor means = stats.narrow(1, 0, c), m2s = stats.narrow(1, c, c);
    mean = means.mean(0);
    const torch::Tensor sq =
        m2s.sum(0) + static_cast<double>(local_count) * (means - mean).square().sum(0);
    var = sq / static_cast<double>(global_count);
    running_mean.mul_(1 - momentum).add_(mean.to(running_mean.dtype()), momentum);
    running_var.mul_(1 - momentum)
        .add_((sq / static_cast<double>(global_count - 1)).to(running_var.dtype()), momentum);
  }
  const torch::Tensor invstd = (var + eps).rsqrt().to(torch::kFloat32);
  // Autograd functions take no undefined inputs: affine = false is weight 1 and bias 0 without
  // gradients.
  const torch::TensorOptions channel = x.options().requires_grad(false);
  const torch::Tensor w = weight.defined() ? weight : torch::ones({x.size(1)}, channel);
  const torch::Tensor b = bias.defined() ? bias : torch::zeros({x.size(1)}, channel);
  return SyncBatchNormFunction::apply(x, w, b, mean.to(torch::kFloat32),
                                      var.to(torch::kFloat32), invstd, eps, global_count,
                                      reinterpret_cast<int64_t>(&group));
}

}  // namespace moco::torch_backend
