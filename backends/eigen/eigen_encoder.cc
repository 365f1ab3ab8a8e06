#include "backends/eigen/eigen_encoder.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "backends/eigen/eigen_tensor.h"
#include "backends/eigen/sgd.h"
#include "moco/core/model_spec.h"
#include "moco/core/status_macros.h"

namespace moco {
namespace eigen_backend {
namespace {

void ToBlob(const HostArray& a, Blob<float>* b) {
  b->shape = a.shape();
  b->data.assign(a.data().begin(), a.data().end());
}

TensorPtr FromBlob(const Blob<float>& b) { return MakeEigenTensor(HostArray(b.shape, b.data)); }

// The const-ness of ExportState: States() hands out mutable pointers but is read-only itself.
std::vector<StateRef<float>> StatesOf(const EigenNetwork& net) {
  return const_cast<EigenNetwork&>(net).States();
}

}  // namespace

absl::StatusOr<std::unique_ptr<EigenEncoder>> EigenEncoder::Create(
    const ModelConfig& model, uint64_t seed, const EncoderOptions& options) {
  ASSIGN_OR_RETURN(const EncoderSpec spec,
                   EncoderSpecForEncoder(model, options.bn_splits, options.with_predictor));
  ASSIGN_OR_RETURN(std::unique_ptr<EigenNetwork> net, MakeEigenNetwork(spec, seed));
  return std::unique_ptr<EigenEncoder>(new EigenEncoder(std::move(net), options.bn_splits));
}

absl::Status EigenEncoder::CheckImages(const HostArray& images, bool train_bn) const {
  const auto& s = images.shape();
  const BackboneSpec& backbone = net_->spec().backbone;
  const int64_t in_channels = backbone.in_channels;
  if (s.size() != 4 || s[1] != in_channels || s[0] < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "images must be (N, ", in_channels, ", H, W), got ", ShapeString(s)));
  }
  if (backbone.is_vit()) RETURN_IF_ERROR(CheckViTImageShape(backbone.vit, s));
  if (train_bn) {
    if (bn_splits_ < 1 || s[0] % bn_splits_ != 0) {
      return absl::InvalidArgumentError(absl::StrCat("batch of ", s[0],
                                                     " images is not divisible by bn_splits (",
                                                     bn_splits_, ")"));
    }
    if (s[0] / bn_splits_ < 2) {
      // The last stage may be 1x1: BN then needs 2 samples per group.
      return absl::InvalidArgumentError(absl::StrCat(
          "train-mode BatchNorm needs at least 2 images per BN split; batch ", s[0],
          " with bn_splits ", bn_splits_));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<TensorPtr> EigenEncoder::Forward(const Tensor& images, bool train_bn,
                                                bool record_for_backward) {
  ASSIGN_OR_RETURN(const EigenTensor* x, AsEigenTensor(images, "Encoder::Forward images"));
  RETURN_IF_ERROR(CheckImages(x->array(), train_bn));
  ToBlob(x->array(), &scratch_);
  const ForwardOptions opt{train_bn, bn_splits_, /*update_running=*/true, bn_group_.get()};
  const Blob<float>& out = net_->Forward(scratch_, opt, record_for_backward);
  RETURN_IF_ERROR(TakeSyncError("Encoder::Forward"));
  if (capture_activations_) {
    captured_.clear();
    for (const auto& [name, blob] : net_->LayerOutputs(record_for_backward)) {
      captured_.emplace_back(name, HostArray(blob->shape, blob->data));
    }
  }
  return FromBlob(out);
}

void EigenEncoder::Enable(bool enabled) {
  capture_activations_ = enabled;
  if (!enabled) captured_.clear();
}

absl::Status EigenEncoder::Backward(const Tensor& grad_output) {
  if (!net_->recorded()) {
    return absl::FailedPreconditionError("Encoder::Backward without a recorded Forward");
  }
  ASSIGN_OR_RETURN(const EigenTensor* g, AsEigenTensor(grad_output, "Encoder::Backward"));
  if (g->array().shape() != net_->recorded_output_shape()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Encoder::Backward: grad_output has shape ", ShapeString(g->array().shape()),
        " but the recorded output is ", ShapeString(net_->recorded_output_shape())));
  }
  ToBlob(g->array(), &scratch_);
  net_->Backward(scratch_);
  return TakeSyncError("Encoder::Backward");
}

void EigenEncoder::CommunicatorBatchNormGroup::AllReduceSum(std::vector<double>& values) {
  // After a failure the rest of this pass is garbage anyway; skip its collectives rather than
  // wait out the group's timeout once per layer.
  if (!error_.ok()) return;
  std::vector<float> narrow(values.begin(), values.end());
  absl::Status status = comm_.AllReduceSumHost(absl::MakeSpan(narrow));
  if (!status.ok()) {
    if (error_.ok()) error_ = std::move(status);
    return;
  }
  std::copy(narrow.begin(), narrow.end(), values.begin());
}

absl::Status EigenEncoder::CommunicatorBatchNormGroup::TakeError() {
  absl::Status error = std::move(error_);
  error_ = absl::OkStatus();
  return error;
}

absl::Status EigenEncoder::TakeSyncError(const char* where) {
  if (bn_group_ == nullptr) return absl::OkStatus();
  absl::Status error = bn_group_->TakeError();
  if (error.ok()) return error;
  return absl::UnavailableError(
      absl::StrCat(where, ": SyncBatchNorm's all-reduce failed: ", error.message()));
}

absl::Status EigenEncoder::SetBatchNormGroup(Communicator* group) {
  if (group == nullptr || group->world_size() == 1) {
    bn_group_.reset();
    return absl::OkStatus();
  }
  if (bn_splits_ != 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("SyncBatchNorm needs bn_splits 1; this encoder has ", bn_splits_));
  }
  bn_group_ = std::make_unique<CommunicatorBatchNormGroup>(*group);
  return absl::OkStatus();
}

void EigenEncoder::ZeroGrad() { net_->ZeroGrad(); }

absl::StatusOr<bool> EigenEncoder::UnscaleGradients(float factor) {
  bool finite = true;
  for (const StateRef<float>& s : StatesOf(*net_)) {
    if (!s.is_parameter()) continue;
    for (int64_t i = 0; i < s.size; ++i) {
      s.grad[i] *= factor;
      finite = finite && std::isfinite(s.grad[i]);
    }
  }
  return finite;
}

absl::StatusOr<TensorPtr> EigenEncoder::BackboneFeatures(const Tensor& images) {
  ASSIGN_OR_RETURN(const EigenTensor* x, AsEigenTensor(images, "Encoder::BackboneFeatures"));
  RETURN_IF_ERROR(CheckImages(x->array(), /*train_bn=*/false));
  ToBlob(x->array(), &scratch_);
  return FromBlob(net_->Features(scratch_));
}

absl::Status EigenEncoder::MomentumUpdateFrom(const Encoder& source, float momentum) {
  const auto* other = dynamic_cast<const EigenEncoder*>(&source);
  if (other == nullptr) {
    return absl::InvalidArgumentError("MomentumUpdateFrom: source is not an eigen encoder");
  }
  std::vector<StateRef<float>> mine = net_->Parameters();
  std::map<std::string, StateRef<float>> theirs;
  for (StateRef<float>& p : const_cast<EigenNetwork&>(*other->net_).Parameters()) {
    theirs.emplace(p.name, p);
  }
  std::vector<const float*> sources;  // theirs, matched to mine by name
  sources.reserve(mine.size());
  for (const StateRef<float>& p : mine) {
    auto it = theirs.find(p.name);
    if (it == theirs.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "MomentumUpdateFrom: parameter '", p.name, "' is missing from the source encoder"));
    }
    if (it->second.shape != p.shape) {
      return absl::InvalidArgumentError(
          absl::StrCat("MomentumUpdateFrom: parameter '", p.name, "' has shape ",
                       ShapeString(p.shape), " but the source's is ",
                       ShapeString(it->second.shape)));
    }
    sources.push_back(it->second.value);
  }
  for (size_t i = 0; i < mine.size(); ++i) {
    MomentumUpdate(mine[i].value, sources[i], mine[i].size, momentum);
  }
  return absl::OkStatus();
}

absl::StatusOr<NamedArrays> EigenEncoder::ExportState() const {
  NamedArrays out;
  for (const StateRef<float>& s : StatesOf(*net_)) {
    out[s.name] = HostArray(s.shape, std::vector<float>(s.value, s.value + s.size));
  }
  return out;
}

absl::StatusOr<NamedArrays> EigenEncoder::ExportGradients() const {
  NamedArrays out;
  for (const StateRef<float>& s : StatesOf(*net_)) {
    if (s.is_parameter()) {
      out[s.name] = HostArray(s.shape, std::vector<float>(s.grad, s.grad + s.size));
    }
  }
  return out;
}

absl::Status EigenEncoder::ImportState(const NamedArrays& state) {
  std::vector<StateRef<float>> targets = net_->States();
  std::set<std::string> expected;
  for (const StateRef<float>& t : targets) {  // check everything before changing anything
    expected.insert(t.name);
    auto it = state.find(t.name);
    if (it == state.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("missing entry '", t.name, "' (shape ", ShapeString(t.shape), ")"));
    }
    if (it->second.shape() != t.shape ||
        static_cast<int64_t>(it->second.data().size()) != t.size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "entry '", t.name, "' has shape ", ShapeString(it->second.shape()),
          " (", it->second.data().size(), " values) but this encoder's is ", ShapeString(t.shape)));
    }
  }
  for (const auto& [name, array] : state) {
    if (!expected.count(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected entry '", name, "' (not in this architecture)"));
    }
  }
  for (StateRef<float>& t : targets) {
    const HostArray& a = state.at(t.name);
    std::copy(a.data().begin(), a.data().end(), t.value);
  }
  return absl::OkStatus();
}

}  // namespace eigen_backend
}  // namespace moco
