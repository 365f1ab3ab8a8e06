// Weighted k-nearest-neighbour classification of features (the InstDisc / MoCo kNN monitor and
// the //eval:knn evaluation).
//
//   KnnOptions options;            // k = 200, T = 0.1 as InstDisc and the MoCo CIFAR demo
//   options.num_classes = 10;
//   ASSIGN_OR_RETURN(ClassificationMetrics m,
//                    WeightedKnnClassify(train_feats, train_labels, test_feats, test_labels, options));
//   LOG(INFO) << "kNN top-1 " << 100 * m.top1 << "%";
//
// Algorithm: rows of both feature matrices are L2-normalized here (a zero row stays zero);
// similarity = cosine = dot product of normalized rows. For each test row the k most similar
// training rows (all of them when k > N) vote for their label with weight exp(sim / T); the
// votes are summed per class and the classes ranked by that score (eval/classification_metrics.h;
// equal scores rank the lower class index first). Neighbours with equal similarity at the k-th
// place are taken in increasing training index, so results are deterministic.
// Cost: one GEMM of (M x D) by (D x N), done in chunks of test rows (Eigen, OpenMP), plus an O(N)
// selection per test row: 60000 x 10000 x 128 takes seconds on 2 cores.
#ifndef EVAL_KNN_CLASSIFIER_H_
#define EVAL_KNN_CLASSIFIER_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "eval/classification_metrics.h"
#include "moco/core/host_array.h"

namespace moco {
namespace eval {

struct KnnOptions {
  int k = 200;               // neighbours; must be > 0; min(k, N) are used
  float temperature = 0.1f;  // T of the vote weight exp(sim / T); must be > 0
  int num_classes = 0;       // labels lie in [0, num_classes); must be > 0
};

// Top-1 / top-5 of the weighted kNN vote described above. Shapes: train_features (N, D) with
// N = train_labels.size() >= 1, test_features (M, D) with M = test_labels.size() (M may be 0).
// Errors (InvalidArgument) name the mismatched argument or option: shapes, label range,
// k <= 0, temperature <= 0, num_classes <= 0, non-finite feature values.
absl::StatusOr<ClassificationMetrics> WeightedKnnClassify(const HostArray& train_features,
                                                          const std::vector<int64_t>& train_labels,
                                                          const HostArray& test_features,
                                                          const std::vector<int64_t>& test_labels,
                                                          const KnnOptions& options);

// The class scores behind WeightedKnnClassify: an (M, num_classes) array whose entry (i, c) is
// sum over the neighbours j of test row i with label c of exp((sim_ij - 1) / T), i.e. the
// InstDisc vote sum exp(sim / T) times the constant exp(-1 / T), which cannot overflow and
// changes no ranking. Same arguments and errors as WeightedKnnClassify (test labels unused).
absl::StatusOr<HostArray> WeightedKnnScores(const HostArray& train_features,
                                            const std::vector<int64_t>& train_labels,
                                            const HostArray& test_features,
                                            const KnnOptions& options);

}  // namespace eval
}  // namespace moco

#endif  // EVAL_KNN_CLASSIFIER_H_
