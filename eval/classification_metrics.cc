#include "eval/classification_metrics.h"

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace moco {
namespace eval {
namespace {

template <typename T>
int RankOf(const T* scores, int num_classes, int64_t label) {
  CHECK(label >= 0 && label < num_classes) << "label " << label << " outside [0, " << num_classes
                                           << ")";
  const T own = scores[label];
  int rank = 0;
  for (int c = 0; c < num_classes; ++c) {
    if (scores[c] > own || (scores[c] == own && c < label)) ++rank;
  }
  return rank;
}

}  // namespace

int ClassRank(const float* scores, int num_classes, int64_t label) {
  return RankOf(scores, num_classes, label);
}
int ClassRank(const double* scores, int num_classes, int64_t label) {
  return RankOf(scores, num_classes, label);
}

void MetricsAccumulator::AddRank(int rank) {
  ++count_;
  if (rank < 1) ++top1_hits_;
  if (rank < 5) ++top5_hits_;
}

void MetricsAccumulator::Merge(const MetricsAccumulator& other) {
  count_ += other.count_;
  top1_hits_ += other.top1_hits_;
  top5_hits_ += other.top5_hits_;
}

ClassificationMetrics MetricsAccumulator::Result() const {
  ClassificationMetrics m;
  m.count = count_;
  if (count_ > 0) {
    m.top1 = static_cast<double>(top1_hits_) / static_cast<double>(count_);
    m.top5 = static_cast<double>(top5_hits_) / static_cast<double>(count_);
  }
  return m;
}

absl::StatusOr<ClassificationMetrics> TopKAccuracy(const HostArray& scores,
                                                   const std::vector<int64_t>& labels) {
  if (scores.shape().size() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("scores must be 2-D (samples, classes), got ", scores.shape().size(), "-D"));
  }
  const int64_t m = scores.shape()[0], c = scores.shape()[1];
  if (scores.numel() != m * c) {
    return absl::InvalidArgumentError(absl::StrCat("scores holds ", scores.numel(),
                                                   " values, its shape says ", m * c));
  }
  if (static_cast<int64_t>(labels.size()) != m) {
    return absl::InvalidArgumentError(absl::StrCat("labels has ", labels.size(),
                                                   " entries, scores has ", m, " rows"));
  }
  MetricsAccumulator acc(static_cast<int>(c));
  for (int64_t i = 0; i < m; ++i) {
    if (labels[i] < 0 || labels[i] >= c) {
      return absl::InvalidArgumentError(absl::StrCat("labels[", i, "] (", labels[i],
                                                     ") is outside [0, ", c, ")"));
    }
    acc.Add(scores.data().data() + i * c, labels[i]);
  }
  return acc.Result();
}

}  // namespace eval
}  // namespace moco
