#include "backends/torch/consecutive_batch_norm.h"

#include <ATen/native/batch_norm.h>

#include <cmath>
#include <vector>

namespace moco::torch_backend {
namespace {

// The layout each group's kernel sees: ATen's rule for a tensor contiguous both ways.
at::MemoryFormat FormatOf(const torch::Tensor& x) {
  return x.is_contiguous() ? at::MemoryFormat::Contiguous : at::MemoryFormat::ChannelsLast;
}

// 1 / sqrt(var + eps), in double and rounded once to float, as ATen's InvStd computes it.
torch::Tensor InverseStd(const torch::Tensor& biased_var, double eps) {
  torch::Tensor var = biased_var.contiguous();
  torch::Tensor invstd = torch::empty_like(var);
  const float* v = var.data_ptr<float>();
  float* out = invstd.data_ptr<float>();
  for (int64_t c = 0; c < var.numel(); ++c) {
    out[c] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(v[c]) + eps));
  }
  return invstd;
}

class ConsecutiveBatchNormFunction
    : public torch::autograd::Function<ConsecutiveBatchNormFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x,
                               torch::Tensor weight, torch::Tensor bias, torch::Tensor group_means,
                               torch::Tensor group_vars, int64_t num_splits, double momentum,
                               double eps) {
    const int64_t n = num_splits;
    const int64_t group = x.size(0) / n;
    const torch::Tensor w = weight.contiguous();
    const torch::Tensor b = bias.contiguous();
    const std::vector<torch::Tensor> means = group_means.chunk(n);
    const std::vector<torch::Tensor> vars = group_vars.chunk(n);
    torch::Tensor y = torch::empty_like(x, FormatOf(x));
    std::vector<torch::Tensor> saved = {x, w};
    for (int64_t g = 0; g < n; ++g) {
      const torch::Tensor xg = x.narrow(0, g * group, group);
      torch::Tensor yg = y.narrow(0, g * group, group);
      // Mean and biased variance of the group; its running statistics updated in place.
      auto [mean, var] = at::batch_norm_update_stats(xg, means[g], vars[g], momentum);
      const torch::Tensor invstd = InverseStd(var, eps);
      at::native::batch_norm_cpu_stub(at::kCPU, yg, xg, w, b, mean, invstd, means[g], vars[g],
                                      /*train=*/true, eps);
      saved.push_back(mean);
      saved.push_back(invstd);
    }
    ctx->save_for_backward(saved);
    ctx->saved_data["n"] = n;
    ctx->saved_data["eps"] = eps;
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& x = saved[0];
    const torch::Tensor& w = saved[1];
    const int64_t n = ctx->saved_data["n"].toInt();
    const double eps = ctx->saved_data["eps"].toDouble();
    const int64_t group = x.size(0) / n;
    const torch::Tensor grad_y = grads[0].contiguous(FormatOf(x));
    torch::Tensor grad_x = torch::empty_like(x, FormatOf(x));
    std::vector<torch::Tensor> grad_ws, grad_bs;
    for (int64_t g = 0; g < n; ++g) {
      torch::Tensor grad_xg = grad_x.narrow(0, g * group, group);
      torch::Tensor grad_wg = torch::empty_like(w);
      torch::Tensor grad_bg = torch::empty_like(w);
      at::native::batch_norm_cpu_backward_stub(
          at::kCPU, grad_xg, grad_wg, grad_bg, grad_y.narrow(0, g * group, group),
          x.narrow(0, g * group, group), w, /*running_mean=*/torch::Tensor(),
          /*running_var=*/torch::Tensor(), saved[2 + 2 * g], saved[3 + 2 * g], /*train=*/true,
          eps);
      grad_ws.push_back(grad_wg);
      grad_bs.push_back(grad_bg);
    }
    // Last group first, as autograd would have accumulated n separate BatchNorm nodes.
    torch::Tensor grad_w = grad_ws[n - 1];
    torch::Tensor grad_b = grad_bs[n - 1];
    for (int64_t g = n - 2; g >= 0; --g) {
      grad_w = grad_w + grad_ws[g];
      grad_b = grad_b + grad_bs[g];
    }
    return {grad_x,          grad_w,          grad_b,          torch::Tensor(),
            torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

bool ConsecutiveGroupBatchNormApplies(const torch::Tensor& x) {
  return x.device().is_cpu() && x.dim() == 4 &&
         (x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kBFloat16) &&
         (x.is_contiguous() || x.is_contiguous(at::MemoryFormat::ChannelsLast));
}

torch::Tensor ConsecutiveGroupBatchNorm(const torch::Tensor& x, const torch::Tensor& weight,
                                        const torch::Tensor& bias, torch::Tensor& group_means,
                                        torch::Tensor& group_vars, int64_t num_splits,
                                        double momentum, double eps) {
  TORCH_CHECK(ConsecutiveGroupBatchNormApplies(x),
              "ConsecutiveGroupBatchNorm: needs a contiguous 4-d CPU tensor, got ", x.sizes(),
              " strides ", x.strides(), " on ", x.device());
  TORCH_CHECK(weight.scalar_type() == torch::kFloat && bias.scalar_type() == torch::kFloat &&
                  group_means.scalar_type() == torch::kFloat &&
                  group_vars.scalar_type() == torch::kFloat,
              "ConsecutiveGroupBatchNorm: weight, bias and running statistics must be float32");
  TORCH_CHECK(x.size(0) % num_splits == 0, "ConsecutiveGroupBatchNorm: batch ", x.size(0),
              " is not divisible by ", num_splits, " groups");
  return ConsecutiveBatchNormFunction::apply(x, weight, bias, group_means, group_vars,
                                             num_splits, momentum, eps);
}

}  // namespace moco::torch_backend
