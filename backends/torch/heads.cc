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

// v3 (head.batch_norm): Sequential(Linear(no bias), BatchNorm1d, ReLU, ..., Linear(no bias)
// [, BatchNorm1d(affine=False)]).
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

// A v3 head's forward with capture and SyncBatchNorm (EncoderHeads::Forward).
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

// v1/v2 heads (no BatchNorm): one Linear, or Sequential(Linear, ReLU, Linear, ...).
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

}  // namespace

void EncoderHeads::Register(const EncoderSpec& spec, nn::Module& owner) {
  const HeadSpec& head = spec.projector;
  if (head.batch_norm) {
    mlp = owner.register_module(head.name, MakeV3Head(head));
  } else if (head.num_layers() == 1) {
    linear = owner.register_module(head.name, nn::Linear(head.in_dim(), head.out_dim()));
  } else {
    // Kept as one expression: the Linear layers draw their initialization from torch's global
    // generator in the order this compiler evaluates the arguments, and results must not move.
    TORCH_CHECK(head.num_layers() == 2, "v1/v2 heads of 1 or 2 Linear layers only");
    mlp = owner.register_module(
        head.name, nn::Sequential(nn::Linear(head.widths[0], head.widths[1]), nn::ReLU(),
                                  nn::Linear(head.widths[1], head.widths[2])));
  }
  if (spec.predictor) predictor = owner.register_module(spec.predictor->name, MakeV3Head(*spec.predictor));
}

torch::Tensor EncoderHeads::Forward(const EncoderSpec& spec, const torch::Tensor& features,
                                    LayerCapture* capture, Communicator* sync) {
  if (!spec.projector.batch_norm) return RunLinearHead(linear, mlp, spec.projector, features, capture);
  torch::Tensor z = RunV3Head(mlp, spec.projector, features, capture, sync);
  return predictor ? RunV3Head(predictor, *spec.predictor, z, capture, sync) : z;
}

}  // namespace moco::torch_backend
