#include "moco/pretrain/online_probe.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "eval/classification_metrics.h"
#include "eval/feature_extractor.h"
#include "moco/core/status_macros.h"

namespace moco {
namespace {

constexpr char kPrefix[] = "probe/";

// The entries of `state` under "probe/<group>" named as LinearClassifier names them.
NamedArrays Select(const NamedArrays& state, const std::vector<std::string>& names) {
  NamedArrays selected;
  for (const std::string& name : names) {
    auto it = state.find(kPrefix + name);
    if (it != state.end()) selected[name] = it->second;
  }
  return selected;
}

}  // namespace

bool IsOnlineProbeEntry(const std::string& name) { return absl::StartsWith(name, kPrefix); }

absl::StatusOr<std::unique_ptr<OnlineProbe>> OnlineProbe::Create(const OnlineProbeConfig& config,
                                                                  int64_t feature_dim,
                                                                  int num_classes, uint64_t seed) {
  if (num_classes < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        "run.online_probe.enabled: the training set has ", num_classes,
        " classes; the probe needs labelled data with at least 2"));
  }
  ASSIGN_OR_RETURN(eval::LinearClassifier classifier,
                   eval::LinearClassifier::Create(feature_dim, num_classes, seed));
  return std::unique_ptr<OnlineProbe>(new OnlineProbe(config, std::move(classifier)));
}

OnlineProbe::OnlineProbe(const OnlineProbeConfig& config, eval::LinearClassifier classifier)
    : lr_(config.lr()), classifier_(std::move(classifier)) {
  sgd_.momentum = config.momentum();
  sgd_.weight_decay = config.weight_decay();
}

absl::Status OnlineProbe::Train(Encoder& encoder, const Tensor& images,
                                const std::vector<int64_t>& local_labels,
                                Communicator& communicator) {
  ASSIGN_OR_RETURN(TensorPtr features_tensor, encoder.BackboneFeatures(images));
  ASSIGN_OR_RETURN(HostArray features, features_tensor->ToHost());
  std::vector<int64_t> labels = local_labels;
  if (communicator.world_size() > 1) {
    ASSIGN_OR_RETURN(eval::FeatureSet global,
                     eval::GatherFeatureBatch(features, labels, communicator));
    features = std::move(global.features);
    labels = std::move(global.labels);
  }
  ASSIGN_OR_RETURN(HostArray scores, classifier_.Scores(features));
  ASSIGN_OR_RETURN(eval::ClassificationMetrics m, eval::TopKAccuracy(scores, labels));
  train_correct_ += static_cast<int64_t>(m.top1 * m.count + 0.5);
  train_seen_ += m.count;
  absl::StatusOr<double> loss = classifier_.SgdStep(features, labels, lr_, sgd_);
  if (!loss.ok()) {
    return absl::Status(loss.status().code(),
                        absl::StrCat("online probe (run.online_probe.lr ", lr_,
                                     "): ", loss.status().message()));
  }
  return absl::OkStatus();
}

std::optional<double> OnlineProbe::TakeTrainTop1() {
  if (train_seen_ == 0) return std::nullopt;
  const double top1 = 100.0 * static_cast<double>(train_correct_) / train_seen_;
  train_correct_ = train_seen_ = 0;
  return top1;
}

absl::StatusOr<double> OnlineProbe::Top1(const HostArray& features,
                                         const std::vector<int64_t>& labels) const {
  ASSIGN_OR_RETURN(HostArray scores, classifier_.Scores(features));
  ASSIGN_OR_RETURN(eval::ClassificationMetrics m, eval::TopKAccuracy(scores, labels));
  return 100.0 * m.top1;
}

NamedArrays OnlineProbe::ExportState() const {
  NamedArrays state;
  for (auto& [name, array] : classifier_.ExportState()) state[kPrefix + name] = array;
  for (auto& [name, array] : classifier_.ExportMomentum()) state[kPrefix + name] = array;
  state[absl::StrCat(kPrefix, "train_counts")] =
      HostArray({2}, {static_cast<float>(train_correct_), static_cast<float>(train_seen_)});
  return state;
}

absl::Status OnlineProbe::ImportState(const NamedArrays& state) {
  auto counts = state.find(absl::StrCat(kPrefix, "train_counts"));
  if (counts == state.end() || counts->second.shape() != std::vector<int64_t>{2}) {
    return absl::InvalidArgumentError(
        "online probe state: \"probe/train_counts\" is missing or not of shape (2)");
  }
  RETURN_IF_ERROR(classifier_.ImportState(Select(state, {"weight", "bias"})));
  RETURN_IF_ERROR(classifier_.ImportMomentum(Select(state, {"weight_momentum", "bias_momentum"})));
  train_correct_ = static_cast<int64_t>(counts->second.data()[0]);
  train_seen_ = static_cast<int64_t>(counts->second.data()[1]);
  return absl::OkStatus();
}

}  // namespace moco
