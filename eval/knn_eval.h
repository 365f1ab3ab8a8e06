// The //eval:knn pipeline as a library: weighted kNN of the test split against the train split's
// features for each selected encoder (learned, random-init, raw pixels), side by side. Its one
// measurement, MeasureKnn, is also pretraining's kNN monitor (moco/pretrain/trainer.cc).
//
//   ASSIGN_OR_RETURN(EvalResults results, RunKnnEval("eval/configs/quickstart.pbtxt"));
#ifndef EVAL_KNN_EVAL_H_
#define EVAL_KNN_EVAL_H_

#include <string>

#include "absl/status/statusor.h"
#include "data/dataset.h"
#include "data/transform.h"
#include "eval/classification_metrics.h"
#include "eval/eval_config.pb.h"
#include "eval/feature_extractor.h"
#include "eval/knn_classifier.h"

namespace moco {
namespace eval {

// Loads and validates the config, reads the checkpoint, extracts features through the
// evaluation view, classifies (knn.k, knn.temperature), writes "knn_results.pbtxt" into the
// results folder (eval/results_writer.h) and returns what it wrote. Errors name the config
// field, the checkpoint or the data file at fault.
// dist_timeout_s: see PrepareEval (eval/eval_setup.h); used only under WORLD_SIZE > 1.
absl::StatusOr<EvalResults> RunKnnEval(const std::string& config_path, int dist_timeout_s = 300);

// What one kNN measurement reads: both splits through one evaluation view.
struct KnnSplits {
  std::shared_ptr<const data::Dataset> train;
  std::shared_ptr<const data::Dataset> test;
  std::shared_ptr<const data::Transform> view;
  ExtractOptions train_options;
  ExtractOptions test_options;
};

struct KnnMeasurement {
  ClassificationMetrics metrics;
  int64_t train_images = 0;
  int64_t feature_dim = 0;
};

// Features of both splits through `source`, then the weighted kNN vote of `knn`.
absl::StatusOr<KnnMeasurement> MeasureKnn(const KnnSplits& splits, FeatureSource& source,
                                          const KnnOptions& knn);

}  // namespace eval
}  // namespace moco

#endif  // EVAL_KNN_EVAL_H_
