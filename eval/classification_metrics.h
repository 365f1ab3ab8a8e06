// Top-1 / top-5 accuracy from per-class scores, shared by the kNN and linear-probe evaluations.
//
//   MetricsAccumulator acc(/*num_classes=*/10);
//   for (each test sample) acc.Add(scores_row, label);   // scores: higher = more likely
//   ClassificationMetrics m = acc.Result();              // m.top1, m.top5 in [0, 1]
//
// Ranking rule (deterministic, also for ties): class a ranks above class b when its score is
// higher, or the scores are equal and a < b. A sample is top-k correct when its label's rank
// (0-based) is < k. With fewer than k classes every sample is top-k correct.
#ifndef EVAL_CLASSIFICATION_METRICS_H_
#define EVAL_CLASSIFICATION_METRICS_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "moco/core/host_array.h"

namespace moco {
namespace eval {

// Accuracies as fractions in [0, 1] over `count` samples (0 and 0 when count == 0).
struct ClassificationMetrics {
  double top1 = 0, top5 = 0;
  int64_t count = 0;
};

// 0-based rank of class `label` among `num_classes` scores under the ranking rule above.
// Precondition (CHECKed): 0 <= label < num_classes.
int ClassRank(const float* scores, int num_classes, int64_t label);
int ClassRank(const double* scores, int num_classes, int64_t label);

// Counts top-1 / top-5 hits sample by sample; merge partial accumulators with Merge().
class MetricsAccumulator {
 public:
  explicit MetricsAccumulator(int num_classes) : num_classes_(num_classes) {}

  // `scores` points to num_classes values. Precondition (CHECKed): 0 <= label < num_classes.
  void Add(const float* scores, int64_t label) { AddRank(ClassRank(scores, num_classes_, label)); }
  void Add(const double* scores, int64_t label) {
    AddRank(ClassRank(scores, num_classes_, label));
  }
  // Adds a sample whose label ranked `rank` (0-based).
  void AddRank(int rank);
  void Merge(const MetricsAccumulator& other);

  ClassificationMetrics Result() const;

 private:
  int num_classes_;
  int64_t count_ = 0, top1_hits_ = 0, top5_hits_ = 0;
};

// Metrics of a whole (M, C) score matrix against M labels. InvalidArgument naming `scores` or
// `labels` when the shapes disagree or a label is outside [0, C).
absl::StatusOr<ClassificationMetrics> TopKAccuracy(const HostArray& scores,
                                                   const std::vector<int64_t>& labels);

}  // namespace eval
}  // namespace moco

#endif  // EVAL_CLASSIFICATION_METRICS_H_
