#include "backends/torch/heads.h"

#include "backends/torch/sync_batch_norm.h"

namespace moco::torch_backend {
namespace nn = torch::nn;
namespace {

// BatchNorm1d of a v3 head in training mode over every rank of `group` (SyncBatchNorm).
torch::Tensor SyncBatchNorm1d(nn::BatchNorm1dImpl& bn, const torch::Tensor& h,
                              Communicator& group) {
  {
    torch::NoGradGuard no_grad;
    bn.num_batches_tracked.add_(1);
  }
  const double momentum = bn.options.momentum().value_or(0.1);
  return SyncBatchNormTrain(h, bn.weight, bn.bias, bn.running_mean, bn.running_var, momentum,
                            bn.options.eps(), group);
}

}  // namespace

nn::Sequential MakeV3Head(const HeadSpec& head) {
  nn::Sequential seq;
  for (int i = 0; i < head.num_layers(); ++i) {
    const int64_t out = head.widths[i + 1];
    const bool hidden = i + 1 < head.num_layers();
    seq->push_back(nn::Linear(nn::LinearOptions(head.widths[i], out).bias(false)));
    if (head.HasNorm(i)) seq->push_back(nn::BatchNorm1d(nn::BatchNorm1dOptions(out).affine(hidden)));
    if (hidden) seq->push_back(nn::ReLU());
  }
  return seq;
}

torch::Tensor RunV3Head(nn::Sequential& seq, const HeadSpec& head, torch::Tensor h,
                        LayerCapture* capture, Communicator* sync) {
  if (capture == nullptr && sync == nullptr) return seq->forward(h);
  size_t j = 0;
  for (int i = 0; i < head.num_layers(); ++i) {
    h = seq->ptr(j++)->as<nn::Linear>()->forward(h);
    if (head.HasNorm(i)) {
      nn::BatchNorm1dImpl& bn = *seq->ptr(j++)->as<nn::BatchNorm1d>();
      h = sync != nullptr && bn.is_training() ? SyncBatchNorm1d(bn, h, *sync) : bn.forward(h);
    }
    if (i + 1 < head.num_layers()) h = seq->ptr(j++)->as<nn::ReLU>()->forward(h);
    if (capture != nullptr) capture->Add(head.OutputName(i), h);
  }
  return h;
}

torch::Tensor RunLinearHead(nn::Linear& linear, nn::Sequential& mlp, const HeadSpec& head,
                            torch::Tensor h, LayerCapture* capture) {
  if (capture == nullptr) return mlp ? mlp->forward(h) : linear->forward(h);
  if (linear) {
    torch::Tensor y = linear->forward(h);
    capture->Add(head.OutputName(0), y);
    return y;
  }
  // Sequential(Linear, ReLU, Linear, ...): capture each Linear's output after its ReLU.
  for (int i = 0; i < head.num_layers(); ++i) {
    h = mlp->at<nn::LinearImpl>(2 * i).forward(h);
    if (i + 1 < head.num_layers()) h = mlp->at<nn::ReLUImpl>(2 * i + 1).forward(h);
    capture->Add(head.OutputName(i), h);
  }
  return h;
}

}  // namespace moco::torch_backend
