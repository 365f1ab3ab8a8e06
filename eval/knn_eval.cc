#include "eval/knn_eval.h"

#include <chrono>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "eval/eval_config_io.h"
#include "eval/eval_setup.h"
#include "eval/knn_classifier.h"
#include "eval/results_writer.h"
#include "glog/logging.h"
#include "moco/core/status_macros.h"

namespace moco {
namespace eval {

absl::StatusOr<KnnMeasurement> MeasureKnn(const KnnSplits& splits, FeatureSource& source,
                                          const KnnOptions& knn) {
  ASSIGN_OR_RETURN(FeatureSet train,
                   ExtractFeatures(splits.train, splits.view, source, splits.train_options));
  ASSIGN_OR_RETURN(FeatureSet test,
                   ExtractFeatures(splits.test, splits.view, source, splits.test_options));
  KnnMeasurement out;
  ASSIGN_OR_RETURN(out.metrics, WeightedKnnClassify(train.features, train.labels,
                                                    test.features, test.labels, knn));
  out.train_images = train.features.shape()[0];
  out.feature_dim = train.features.shape()[1];
  return out;
}

absl::StatusOr<EvalResults> RunKnnEval(const std::string& config_path, int dist_timeout_s) {
  ASSIGN_OR_RETURN(std::unique_ptr<EvalSetup> setup, PrepareEval(config_path, dist_timeout_s));
  const EvalConfig& config = setup->config;
  // Before the (long) evaluation, not after it.
  RETURN_IF_ERROR(CheckResultsWritable(*setup));
  EvalResults results;
  results.set_tool("knn");
  results.set_checkpoint(config.checkpoint());
  results.set_checkpoint_epoch(setup->checkpoint.epoch);
  results.set_checkpoint_global_step(setup->checkpoint.global_step);
  *results.mutable_checkpoint_config() = setup->checkpoint.config;
  *results.mutable_eval_config() = config;

  KnnOptions options;
  options.k = config.knn().k();
  options.temperature = config.knn().temperature();
  options.num_classes = setup->num_classes;
  for (EvalConfig::Encoders which : SelectedEncoders(config)) {
    const auto start = std::chrono::steady_clock::now();
    ASSIGN_OR_RETURN(EvaluatedEncoder encoder, MakeEvaluatedEncoder(*setup, which));
    KnnSplits splits{setup->train, setup->test, setup->eval_view,
                     LoggedExtractionOptions(*setup, encoder.name, data::Split::kTrain),
                     LoggedExtractionOptions(*setup, encoder.name, data::Split::kTest)};
    ASSIGN_OR_RETURN(KnnMeasurement measured, MeasureKnn(splits, *encoder.source, options));
    const ClassificationMetrics& m = measured.metrics;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    LOG(INFO) << encoder.name << " kNN top-1 " << 100 * m.top1 << "%, top-5 " << 100 * m.top5
              << "% (" << m.count << " test images, " << seconds << " s)";
    EvalResults::EncoderResult* r = results.add_results();
    r->set_encoder(encoder.name);
    r->set_top1(m.top1);
    r->set_top5(m.top5);
    r->set_test_images(m.count);
    r->set_train_images(measured.train_images);
    r->set_feature_dim(measured.feature_dim);
    r->set_seconds(seconds);
  }
  results.set_finished_at(absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone()));
  RETURN_IF_ERROR(PublishResults(*setup, results));
  return results;
}

}  // namespace eval
}  // namespace moco
