#include "backends/torch/torch_encoder.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "backends/torch/torch_tensor.h"
#include "moco/core/model_spec.h"
#include "moco/core/status_macros.h"

namespace moco::torch_backend {
namespace {

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// Parameters then buffers, by name.
std::vector<std::pair<std::string, torch::Tensor>> NamedStateTensors(
    const torch::nn::Module& module) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : module.named_parameters()) out.emplace_back(p.key(), p.value());
  for (const auto& b : module.named_buffers()) out.emplace_back(b.key(), b.value());
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TorchEncoder>> TorchEncoder::Create(
    const ModelConfig& model, uint64_t seed, const EncoderOptions& encoder_options,
    const torch::Device& device, const Numerics& numerics) {
  return GuardTorch("TorchEncoder::Create",
                    [&]() -> absl::StatusOr<std::unique_ptr<TorchEncoder>> {
    ASSIGN_OR_RETURN(const EncoderSpec spec,
                     EncoderSpecForEncoder(model, encoder_options.bn_splits,
                                           encoder_options.with_predictor));
    torch::manual_seed(seed);
    ASSIGN_OR_RETURN(std::unique_ptr<EncoderNetwork> net,
                     MakeEncoderNetwork(spec, encoder_options.bn_splits, numerics.channels_last));
    net->module()->to(device);
    if (numerics.channels_last) ParametersToChannelsLast(*net->module());
    const int64_t backbone_dim = net->backbone_dim();
    return std::unique_ptr<TorchEncoder>(new TorchEncoder(
        std::move(net), spec.feature_dim(), backbone_dim, device, numerics));
  });
}

absl::StatusOr<TensorPtr> TorchEncoder::Forward(const Tensor& images, bool train_bn,
                                                bool record_for_backward) {
  ASSIGN_OR_RETURN(torch::Tensor x, Unwrap(images));
  RETURN_IF_ERROR(net_->CheckImages(x));
  LayerCapture capture;
  net_->SetActivationCapture(capture_activations_ ? &capture : nullptr);
  absl::StatusOr<TensorPtr> out = ForwardUncaptured(x, train_bn, record_for_backward);
  net_->SetActivationCapture(nullptr);
  if (capture_activations_ && out.ok()) {
    captured_.clear();
    for (const auto& [name, t] : capture.layers) captured_.emplace_back(name, ToHostArray(t));
  }
  return out;
}

void TorchEncoder::Enable(bool enabled) {
  capture_activations_ = enabled;
  if (!enabled) captured_.clear();
}

absl::StatusOr<TensorPtr> TorchEncoder::ForwardUncaptured(const torch::Tensor& x, bool train_bn,
                                                          bool record_for_backward) {
  return GuardTorch("TorchEncoder::Forward", [&]() -> absl::StatusOr<TensorPtr> {
    net_->module()->train(train_bn);
    // The head's output in fp32 (a no-op without bf16), normalized outside autocast.
    auto run = [&] {
      torch::Tensor head;
      {
        AutocastScope autocast(numerics_, device_);
        head = net_->Forward(ToLayout(x, numerics_));
      }
      return torch::nn::functional::normalize(head.to(torch::kFloat32),
                                              torch::nn::functional::NormalizeFuncOptions().dim(1));
    };
    if (!record_for_backward) {
      torch::NoGradGuard no_grad;
      return Wrap(run());
    }
    recorded_output_ = run();
    return Wrap(recorded_output_.detach());
  });
}

absl::Status TorchEncoder::Backward(const Tensor& grad_output) {
  if (!recorded_output_.defined()) {
    return absl::FailedPreconditionError("Encoder::Backward without a recorded Forward");
  }
  ASSIGN_OR_RETURN(torch::Tensor grad, Unwrap(grad_output));
  return GuardTorch("TorchEncoder::Backward", [&]() -> absl::Status {
    recorded_output_.backward(grad);
    recorded_output_ = torch::Tensor();
    return absl::OkStatus();
  });
}

void TorchEncoder::ZeroGrad() {
  for (auto& p : net_->module()->parameters()) {
    if (p.grad().defined()) p.mutable_grad().zero_();
  }
}

absl::StatusOr<bool> TorchEncoder::UnscaleGradients(float factor) {
  return GuardTorch("TorchEncoder::UnscaleGradients", [&]() -> absl::StatusOr<bool> {
    torch::NoGradGuard no_grad;
    // One flag per gradient, reduced on the device: a single host synchronization.
    std::vector<torch::Tensor> finite;
    for (auto& p : net_->module()->parameters()) {
      if (!p.grad().defined()) continue;
      p.mutable_grad().mul_(factor);
      finite.push_back(torch::isfinite(p.grad()).all());
    }
    return finite.empty() || torch::stack(finite).all().item<bool>();
  });
}

absl::StatusOr<TensorPtr> TorchEncoder::BackboneFeatures(const Tensor& images) {
  ASSIGN_OR_RETURN(torch::Tensor x, Unwrap(images));
  RETURN_IF_ERROR(net_->CheckImages(x));
  return GuardTorch("TorchEncoder::BackboneFeatures", [&]() -> absl::StatusOr<TensorPtr> {
    torch::NoGradGuard no_grad;
    net_->module()->eval();
    AutocastScope autocast(numerics_, device_);
    return Wrap(net_->Features(ToLayout(x, numerics_)).to(torch::kFloat32));
  });
}

absl::Status TorchEncoder::MomentumUpdateFrom(const Encoder& source, float momentum) {
  const auto* other = dynamic_cast<const TorchEncoder*>(&source);
  if (other == nullptr) {
    return absl::InvalidArgumentError("MomentumUpdateFrom: source is not a torch encoder");
  }
  return GuardTorch("TorchEncoder::MomentumUpdateFrom", [&]() -> absl::Status {
    torch::NoGradGuard no_grad;
    const auto mine = net_->module()->named_parameters();
    const auto theirs = other->net_->module()->named_parameters();
    std::vector<torch::Tensor> sources;  // theirs, matched to mine by name
    sources.reserve(mine.size());
    for (const auto& p : mine) {
      const torch::Tensor* t = theirs.find(p.key());
      if (t == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat(
            "MomentumUpdateFrom: parameter '", p.key(), "' is missing from the source encoder"));
      }
      if (t->sizes() != p.value().sizes()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "MomentumUpdateFrom: parameter '", p.key(), "' has shape ",
            ShapeString(p.value().sizes().vec()), " but the source's is ",
            ShapeString(t->sizes().vec())));
      }
      sources.push_back(t->detach());
    }
    for (size_t i = 0; i < mine.size(); ++i) {
      mine[i].value().mul_(momentum).add_(sources[i], 1.0 - momentum);
    }
    return absl::OkStatus();
  });
}

absl::Status TorchEncoder::SetBatchNormGroup(Communicator* group) {
  if (group != nullptr && group->world_size() > 1 && net_->bn_splits() != 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "SyncBatchNorm needs bn_splits 1; this encoder has ", net_->bn_splits()));
  }
  return GuardTorch("TorchEncoder::SetBatchNormGroup", [&]() -> absl::Status {
    net_->SetSyncGroup(group);
    return absl::OkStatus();
  });
}

absl::StatusOr<NamedArrays> TorchEncoder::ExportState() const {
  return GuardTorch("TorchEncoder::ExportState", [&]() -> absl::StatusOr<NamedArrays> {
    NamedArrays state;
    for (const auto& [name, t] : NamedStateTensors(*net_->module())) state[name] = ToHostArray(t);
    return state;
  });
}

absl::StatusOr<NamedArrays> TorchEncoder::ExportGradients() const {
  return GuardTorch("TorchEncoder::ExportGradients", [&]() -> absl::StatusOr<NamedArrays> {
    NamedArrays grads;
    for (const auto& p : net_->module()->named_parameters()) {
      grads[p.key()] = p.value().grad().defined() ? ToHostArray(p.value().grad())
                                                  : HostArray(p.value().sizes().vec());
    }
    return grads;
  });
}

absl::Status TorchEncoder::ImportState(const NamedArrays& state) {
  const auto targets = NamedStateTensors(*net_->module());
  std::set<std::string> expected;
  // Check everything before changing anything.
  for (const auto& [name, t] : targets) {
    expected.insert(name);
    auto it = state.find(name);
    if (it == state.end()) {
      return absl::InvalidArgumentError(absl::StrCat("missing entry '", name, "' (shape ",
                                                     ShapeString(t.sizes().vec()), ")"));
    }
    if (it->second.shape() != t.sizes().vec()) {
      return absl::InvalidArgumentError(
          absl::StrCat("entry '", name, "' has shape ", ShapeString(it->second.shape()),
                       " but this encoder's is ", ShapeString(t.sizes().vec())));
    }
  }
  for (const auto& [name, array] : state) {
    if (!expected.count(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected entry '", name, "' (not in this architecture)"));
    }
  }
  return GuardTorch("TorchEncoder::ImportState", [&]() -> absl::Status {
    torch::NoGradGuard no_grad;
    for (const auto& [name, t] : targets) {
      torch::Tensor target = t;  // shares storage with the module's tensor
      target.copy_(FromHostArray(state.at(name), target.device()));
    }
    return absl::OkStatus();
  });
}

}  // namespace moco::torch_backend
