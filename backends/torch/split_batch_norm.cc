#include "backends/torch/split_batch_norm.h"

#include <vector>

namespace moco::torch_backend {

SplitBatchNorm2dImpl::SplitBatchNorm2dImpl(int64_t num_features) : num_features_(num_features) {
  TORCH_CHECK(num_features > 0, "SplitBatchNorm2d: num_features must be positive, got ",
              num_features);
  reset();
}

void SplitBatchNorm2dImpl::reset() {
  weight = register_parameter("weight", torch::ones({num_features_}));
  bias = register_parameter("bias", torch::zeros({num_features_}));
  running_mean = register_buffer("running_mean", torch::zeros({num_features_}));
  running_var = register_buffer("running_var", torch::ones({num_features_}));
  num_batches_tracked =
      register_buffer("num_batches_tracked", torch::zeros({}, torch::dtype(torch::kLong)));
}

void SplitBatchNorm2dImpl::set_num_splits(int64_t num_splits) {
  TORCH_CHECK(num_splits >= 1, "SplitBatchNorm2d: num_splits must be >= 1, got ", num_splits);
  num_splits_ = num_splits;
}

torch::Tensor SplitBatchNorm2dImpl::forward(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 4, "SplitBatchNorm2d: expected a 4-d (N, C, H, W) input, got ",
              x.dim(), "-d");
  TORCH_CHECK(x.size(1) == num_features_, "SplitBatchNorm2d: expected ", num_features_,
              " channels, got ", x.size(1));
  if (!is_training()) {
    return torch::batch_norm(x, weight, bias, running_mean, running_var, /*training=*/false,
                             kMomentum, kEps, /*cudnn_enabled=*/true);
  }
  {
    torch::NoGradGuard no_grad;
    num_batches_tracked.add_(1);
  }
  if (num_splits_ == 1) {
    return torch::batch_norm(x, weight, bias, running_mean, running_var, /*training=*/true,
                             kMomentum, kEps, /*cudnn_enabled=*/true);
  }
  const int64_t n = num_splits_;
  TORCH_CHECK(x.size(0) % n == 0, "SplitBatchNorm2d: batch size ", x.size(0),
              " is not divisible by num_splits ", n);
  TORCH_CHECK(x.size(0) / n * x.size(2) * x.size(3) > 1,
              "SplitBatchNorm2d: each of the ", n, " groups of a batch of ", x.size(0),
              " has a single value per channel; the batch variance is undefined");
  // Each group updates its own copy of the running statistics, as each GPU would; the copies
  // are then averaged. split() gives contiguous views and a single backward node.
  torch::Tensor group_means, group_vars;
  {
    torch::NoGradGuard no_grad;
    group_means = running_mean.unsqueeze(0).repeat({n, 1});
    group_vars = running_var.unsqueeze(0).repeat({n, 1});
  }
  const std::vector<torch::Tensor> groups = x.split(x.size(0) / n, /*dim=*/0);
  std::vector<torch::Tensor> outputs;
  outputs.reserve(n);
  for (int64_t g = 0; g < n; ++g) {
    outputs.push_back(torch::batch_norm(groups[g], weight, bias, group_means[g], group_vars[g],
                                        /*training=*/true, kMomentum, kEps,
                                        /*cudnn_enabled=*/true));
  }
  {
    torch::NoGradGuard no_grad;
    running_mean.copy_(group_means.mean(0));
    running_var.copy_(group_vars.mean(0));
  }
  return torch::cat(outputs, /*dim=*/0);
}

void SplitBatchNorm2dImpl::pretty_print(std::ostream& stream) const {
  stream << "moco::torch_backend::SplitBatchNorm2d(" << num_features_
         << ", eps=" << kEps << ", momentum=" << kMomentum << ", num_splits=" << num_splits_
         << ")";
}

}  // namespace moco::torch_backend
