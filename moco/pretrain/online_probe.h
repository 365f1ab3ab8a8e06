// The online linear probe of a pretraining run (run.online_probe, config.proto): a linear
// classifier on the backbone features of each step's first view, trained beside pretraining
// with its own SGD. The encoder is only read (BackboneFeatures: eval-mode BN, no gradient), so
// pretraining is unchanged by it.
//
//   ASSIGN_OR_RETURN(auto probe, OnlineProbe::Create(config.run().online_probe(), dim, classes, seed));
//   RETURN_IF_ERROR(probe->Train(encoder, *view1, batch.labels, comm));  // after each step
//   std::optional<double> train_top1 = probe->TakeTrainTop1();      // at each epoch end
//   ASSIGN_OR_RETURN(double test_top1, probe->Top1(test.features, test.labels));
#ifndef MOCO_PRETRAIN_ONLINE_PROBE_H_
#define MOCO_PRETRAIN_ONLINE_PROBE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "eval/linear_classifier.h"
#include "moco/config/config.pb.h"
#include "moco/core/communicator.h"
#include "moco/core/encoder.h"
#include "moco/core/host_array.h"
#include "moco/core/tensor.h"

namespace moco {

class OnlineProbe {
 public:
  // A probe of `feature_dim` inputs and `num_classes` outputs (both > 0), weights from `seed`.
  static absl::StatusOr<std::unique_ptr<OnlineProbe>> Create(const OnlineProbeConfig& config,
                                                             int64_t feature_dim,
                                                             int num_classes, uint64_t seed);

  // One SGD step on `encoder`'s backbone features of `images` with their `labels`; the batch is
  // scored before the step for the training top-1. Data parallel (world > 1): every rank passes
  // its share of the global batch; the features and labels are all-gathered so that every rank
  // takes the same step on the global batch and the probes stay identical.
  absl::Status Train(Encoder& encoder, const Tensor& images, const std::vector<int64_t>& labels,
                     Communicator& communicator);

  // Training top-1 (percent) over the batches since the last call; nullopt when none.
  std::optional<double> TakeTrainTop1();

  // Top-1 (percent) of the probe on `features` (N, feature_dim) with N labels.
  absl::StatusOr<double> Top1(const HostArray& features, const std::vector<int64_t>& labels) const;

  // Weights, momentum buffers and the epoch's running training counts, under "probe/": the
  // checkpoint's part, so a resumed run continues the probe exactly.
  NamedArrays ExportState() const;
  // Takes the "probe/" entries of `state` (others are ignored); InvalidArgument naming the
  // first missing or mis-shaped entry.
  absl::Status ImportState(const NamedArrays& state);

 private:
  OnlineProbe(const OnlineProbeConfig& config, eval::LinearClassifier classifier);

  eval::SgdOptions sgd_;
  double lr_;
  eval::LinearClassifier classifier_;
  int64_t train_correct_ = 0;
  int64_t train_seen_ = 0;
};

// True for checkpoint entries that belong to the online probe, not to the training method.
bool IsOnlineProbeEntry(const std::string& name);

}  // namespace moco

#endif  // MOCO_PRETRAIN_ONLINE_PROBE_H_
