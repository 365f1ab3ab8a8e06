#include "eval/linear_probe_eval.h"

#include <chrono>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "data/transform.h"
#include "eval/checkpoint_encoder.h"
#include "eval/classification_metrics.h"
#include "eval/eval_config_io.h"
#include "eval/eval_setup.h"
#include "eval/results_writer.h"
#include "glog/logging.h"
#include "moco/config/augmentation_presets.h"
#include "moco/run/progress_display.h"
#include "moco/core/status_macros.h"

namespace moco {
namespace eval {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Feeds the progress display after each SGD step, with images/s over that step.
class StepReporter {
 public:
  StepReporter(int epochs, int64_t steps_per_epoch, int64_t log_every)
      : display_(Options(log_every), epochs, steps_per_epoch, 0), last_(Clock::now()) {}
  void Step(double loss, double lr, int64_t images) {
    const double dt = SecondsSince(last_);
    last_ = Clock::now();
    display_.Update(++global_step_, loss, lr, dt > 0 ? images / dt : 0);
  }
  void Finish() { display_.Finish(); }

 private:
  static ProgressDisplay::Options Options(int64_t log_every) {
    ProgressDisplay::Options o;
    o.log_every_steps = static_cast<int>(std::max<int64_t>(1, log_every));
    return o;
  }
  ProgressDisplay display_;
  Clock::time_point last_;
  int64_t global_step_ = 0;
};

struct ProbeOutcome {
  ClassificationMetrics metrics;
  double final_train_loss = 0;
  int64_t train_images = 0;
};

absl::StatusOr<ProbeOutcome> TestClassifier(const LinearClassifier& classifier,
                                            FeatureSet* test_features) {
  ProbeOutcome out;
  ASSIGN_OR_RETURN(HostArray scores, classifier.Scores(test_features->features));
  ASSIGN_OR_RETURN(out.metrics, TopKAccuracy(scores, test_features->labels));
  return out;
}

absl::StatusOr<ProbeOutcome> ProbeOnFeatures(EvalSetup& setup, EvaluatedEncoder& encoder) {
  const LinearConfig& l = setup.config.linear();
  ASSIGN_OR_RETURN(FeatureSet train,
                   ExtractSplit(setup, *encoder.source, encoder.name, data::Split::kTrain));
  ASSIGN_OR_RETURN(FeatureSet test,
                   ExtractSplit(setup, *encoder.source, encoder.name, data::Split::kTest));
  if (l.standardize_features()) StandardizeFeatures(train.features, test.features);
  ASSIGN_OR_RETURN(LinearClassifier classifier,
                   LinearClassifier::Create(train.features.shape()[1], setup.num_classes, l.seed()));
  const int64_t n = train.features.shape()[0];
  const int64_t steps = (n + l.batch_size() - 1) / l.batch_size();
  StepReporter reporter(l.epochs(), steps, steps);
  TrainOptions t;
  t.sgd = SgdOptionsFromConfig(l);
  t.batch_size = l.batch_size();
  t.seed = l.seed();
  t.on_step = [&](const TrainProgress& p) {
    reporter.Step(p.loss, p.lr, std::min<int64_t>(l.batch_size(), n - p.step * l.batch_size()));
  };
  ASSIGN_OR_RETURN(std::vector<double> losses, TrainOnFeatures(classifier, train.features,
                                                               train.labels, t));
  reporter.Finish();
  ASSIGN_OR_RETURN(ProbeOutcome out, TestClassifier(classifier, &test));
  out.final_train_loss = losses.empty() ? 0 : losses.back();
  out.train_images = n;
  return out;
}

// Data parallel: each rank augments and encodes its slice of every global batch of
// linear.batch_size, the features are all-gathered and every rank takes the same SGD step, so
// the classifiers stay identical; the last partial batch of an epoch is dropped (one process
// keeps it), hence world W equals world 1 when the train images divide into whole batches.
absl::StatusOr<ProbeOutcome> ProbeAugmented(EvalSetup& setup, EvaluatedEncoder& encoder) {
  const LinearConfig& l = setup.config.linear();
  Communicator& comm = *setup.communicator;
  const int world = comm.world_size();
  if (world > 1 && l.batch_size() % world != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "linear.batch_size (", l.batch_size(), ") is the global batch of the augmented probe and "
        "must be a multiple of the world size (WORLD_SIZE ", world, ")"));
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const data::Transform> augment,
                   data::MakeTrainTransform(ProtocolTrainAugmentation(setup.config.data()),
                                            setup.in_channels));
  ASSIGN_OR_RETURN(LinearClassifier classifier,
                   LinearClassifier::Create(encoder.feature_dim, setup.num_classes, l.seed()));
  ExtractOptions o = ExtractionOptions(setup, data::Split::kTrain);
  o.loader.batch_size = l.batch_size();
  o.loader.shuffle = true;
  o.loader.seed = l.seed();
  o.loader.rank = comm.rank();
  o.loader.world_size = world;
  const FeaturePass pass = PlanFeaturePass(setup.train->size(), o);
  const int64_t steps = pass.batches;
  const SgdOptions sgd = SgdOptionsFromConfig(l);
  StepReporter reporter(l.epochs(), steps, std::max<int64_t>(1, steps / 4));
  double epoch_loss = 0;
  for (int epoch = 0; epoch < l.epochs(); ++epoch) {
    const double lr = LearningRateAt(sgd, epoch);
    o.epoch = epoch;
    double sum = 0;
    int64_t step = 0;
    RETURN_IF_ERROR(ForEachFeatureBatch(
        setup.train, augment, *encoder.source, o,
        [&](const HostArray& local_features,
            const std::vector<int64_t>& local_labels) -> absl::Status {
          const HostArray* features = &local_features;
          const std::vector<int64_t>* labels = &local_labels;
          FeatureSet global;
          if (world > 1) {
            ASSIGN_OR_RETURN(global, GatherFeatureBatch(local_features, local_labels, comm));
            features = &global.features;
            labels = &global.labels;
          }
          absl::StatusOr<double> loss = classifier.SgdStep(*features, *labels, lr, sgd);
          if (!loss.ok()) {
            return absl::Status(loss.status().code(), absl::StrCat("epoch ", epoch, ", step ",
                                                                   step, ": ",
                                                                   loss.status().message()));
          }
          sum += *loss;
          ++step;
          reporter.Step(*loss, lr, features->shape()[0]);
          return absl::OkStatus();
        }));
    epoch_loss = step > 0 ? sum / step : 0;
  }
  reporter.Finish();
  ASSIGN_OR_RETURN(FeatureSet test,
                   ExtractSplit(setup, *encoder.source, encoder.name, data::Split::kTest));
  ASSIGN_OR_RETURN(ProbeOutcome out, TestClassifier(classifier, &test));
  out.final_train_loss = epoch_loss;
  out.train_images = pass.images;
  return out;
}

}  // namespace

SgdOptions SgdOptionsFromConfig(const LinearConfig& linear) {
  SgdOptions o;
  o.lr = linear.lr();
  o.momentum = linear.momentum();
  o.weight_decay = linear.weight_decay();
  o.epochs = linear.epochs();
  o.schedule = linear.schedule() == LinearConfig::COSINE ? SgdOptions::Schedule::kCosine
                                                         : SgdOptions::Schedule::kMultiStep;
  o.milestones = EffectiveMilestones(linear);
  o.gamma = linear.gamma();
  return o;
}

DataConfig ProtocolTrainAugmentation(const DataConfig& data) {
  DataConfig out = data;
  const AugmentationConfig resolved = ResolveAugmentation(data.augmentation());
  AugmentationConfig* a = out.mutable_augmentation();
  a->Clear();
  a->set_preset(AugmentationConfig::CUSTOM);
  a->set_crop_scale_min(0.08f);
  a->set_crop_scale_max(1.0f);
  a->set_crop_ratio_min(3.0f / 4.0f);
  a->set_crop_ratio_max(4.0f / 3.0f);
  a->set_hflip_prob(0.5f);
  *a->mutable_normalize_mean() = resolved.normalize_mean();
  *a->mutable_normalize_std() = resolved.normalize_std();
  return out;
}

void StandardizeFeatures(HostArray& train, HostArray& test) {
  const int64_t n = train.shape()[0], d = train.shape()[1];
  if (n == 0) return;
  std::vector<double> mean(d, 0.0), var(d, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) mean[j] += train.data()[i * d + j];
  for (double& m : mean) m /= n;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) {
      const double c = train.data()[i * d + j] - mean[j];
      var[j] += c * c;
    }
  }
  std::vector<float> shift(d), scale(d);
  for (int64_t j = 0; j < d; ++j) {
    shift[j] = static_cast<float>(mean[j]);
    scale[j] = static_cast<float>(1.0 / std::sqrt(var[j] / n + 1e-5));
  }
  for (HostArray* a : {&train, &test}) {
    const int64_t rows = a->shape()[0];
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < d; ++j) a->mutable_data()[i * d + j] = (a->data()[i * d + j] - shift[j]) * scale[j];
  }
}

absl::StatusOr<EvalResults> RunLinearProbeEval(const std::string& config_path, int dist_timeout_s) {
  ASSIGN_OR_RETURN(std::unique_ptr<EvalSetup> setup, PrepareEval(config_path, dist_timeout_s));
  const EvalConfig& config = setup->config;
  // Before the (long) evaluation, not after it.
  RETURN_IF_ERROR(CheckResultsWritable(*setup));
  EvalResults results;
  results.set_tool("linear_probe");
  results.set_checkpoint(config.checkpoint());
  results.set_checkpoint_epoch(setup->checkpoint.epoch);
  results.set_checkpoint_global_step(setup->checkpoint.global_step);
  *results.mutable_checkpoint_config() = setup->checkpoint.config;
  *results.mutable_eval_config() = config;
  bool verified = false;
  for (EvalConfig::Encoders which : SelectedEncoders(config)) {
    const auto start = Clock::now();
    ASSIGN_OR_RETURN(EvaluatedEncoder encoder, MakeEvaluatedEncoder(*setup, which));
    LOG(INFO) << "linear probe of " << encoder.name << " features (dim " << encoder.feature_dim
              << ", " << LinearConfig::Mode_Name(config.linear().mode()) << " mode)";
    NamedArrays before;
    if (encoder.encoder != nullptr) {
      ASSIGN_OR_RETURN(before, encoder.encoder->ExportState());
    }
    ProbeOutcome outcome;
    if (config.linear().mode() == LinearConfig::FEATURES) {
      ASSIGN_OR_RETURN(outcome, ProbeOnFeatures(*setup, encoder));
    } else {
      ASSIGN_OR_RETURN(outcome, ProbeAugmented(*setup, encoder));
    }
    if (encoder.encoder != nullptr) {
      std::string difference;
      ASSIGN_OR_RETURN(const NamedArrays after, encoder.encoder->ExportState());
      if (!BitwiseEqual(before, after, &difference)) {
        return absl::InternalError(absl::StrCat("sanity check failed: the ", encoder.name,
                                                " backbone changed during linear training (",
                                                difference, ")"));
      }
      LOG(INFO) << encoder.name << " backbone verified bitwise unchanged (" << before.size()
                << " arrays)";
      verified = true;
    }
    const double seconds = SecondsSince(start);
    LOG(INFO) << encoder.name << " linear top-1 " << 100 * outcome.metrics.top1 << "%, top-5 "
              << 100 * outcome.metrics.top5 << "% (" << outcome.metrics.count
              << " test images, " << seconds << " s)";
    EvalResults::EncoderResult* r = results.add_results();
    r->set_encoder(encoder.name);
    r->set_top1(outcome.metrics.top1);
    r->set_top5(outcome.metrics.top5);
    r->set_test_images(outcome.metrics.count);
    r->set_train_images(outcome.train_images);
    r->set_feature_dim(encoder.feature_dim);
    r->set_final_train_loss(outcome.final_train_loss);
    r->set_seconds(seconds);
  }
  results.set_backbone_unchanged_verified(verified);
  results.set_finished_at(absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone()));
  RETURN_IF_ERROR(PublishResults(*setup, results));
  return results;
}

}  // namespace eval
}  // namespace moco
