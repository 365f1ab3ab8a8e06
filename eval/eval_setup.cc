#include "eval/eval_setup.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "backends/distributed/dist_env.h"
#include "backends/distributed/gloo_communicator.h"
#include "data/dataset.h"
#include "eval/eval_config_io.h"
#include "eval/eval_config_validator.h"
#include "eval/results_writer.h"
#include "glog/logging.h"
#include "moco/config/augmentation_presets.h"
#include "moco/config/config_io.h"
#include "moco/core/backend_registry.h"
#include "moco/core/status_macros.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace moco {
namespace eval {

namespace {

// World 1 without torchrun's variables; else the Gloo group they describe, tagged with the
// config so that every rank evaluates the same thing.
absl::StatusOr<std::unique_ptr<Communicator>> JoinEvalGroup(const EvalConfig& config,
                                                            int dist_timeout_s) {
  ASSIGN_OR_RETURN(distributed::DistributedEnv env, distributed::DistributedEnvFromEnvironment());
  if (env.world_size <= 1) return MakeLocalCommunicator();
  if (dist_timeout_s <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--dist_timeout_s (", dist_timeout_s, ") must be > 0 seconds"));
  }
  distributed::GlooOptions gloo;
  gloo.timeout = std::chrono::seconds(dist_timeout_s);
  gloo.rendezvous_tag = distributed::RendezvousTagOf(ToTextProto(config));
  ASSIGN_OR_RETURN(std::unique_ptr<Communicator> comm,
                   distributed::CreateGlooCommunicator(env, gloo));
  LOG(INFO) << "rank " << comm->rank() << " of " << comm->world_size()
            << ": feature extraction sharded over the group; rank 0 writes the results";
  return comm;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EvalSetup>> PrepareEval(const std::string& config_path,
                                                       int dist_timeout_s) {
  auto setup = std::make_unique<EvalSetup>();
  setup->config_path = config_path;
  ASSIGN_OR_RETURN(setup->config, LoadEvalConfig(config_path));
  EvalValidationOptions validation;
  RETURN_IF_ERROR(ValidateEvalConfig(setup->config, validation, config_path));
  const EvalConfig& config = setup->config;

  ASSIGN_OR_RETURN(setup->checkpoint, ReadEvalCheckpoint(config.checkpoint()));
  const ExperimentConfig& pretrain = setup->checkpoint.config;
  setup->in_channels = pretrain.model().in_channels();
  LOG(INFO) << "checkpoint " << config.checkpoint() << ": " << pretrain.model().arch()
            << " (width " << pretrain.model().width_multiplier() << ", " << setup->in_channels
            << " channel input) after " << setup->checkpoint.epoch << " epochs, "
            << setup->checkpoint.global_step << " steps, written by backend '"
            << setup->checkpoint.backend << "'";

  const AugmentationConfig aug = ResolveAugmentation(config.data().augmentation());
  if (aug.normalize_mean_size() != 1 && aug.normalize_mean_size() != setup->in_channels) {
    return absl::InvalidArgumentError(absl::StrCat(
        config_path, ": data.augmentation.normalize_mean has ", aug.normalize_mean_size(),
        " values but the checkpoint's model.in_channels is ", setup->in_channels,
        " (give 1 value or one per channel)"));
  }
  if (pretrain.data().image_size() != config.data().image_size()) {
    LOG(WARNING) << "data.image_size " << config.data().image_size()
                 << " differs from the pretraining image size " << pretrain.data().image_size();
  }

#ifdef _OPENMP
  if (config.threads() > 0) omp_set_num_threads(config.threads());
#endif
  BackendOptions backend_options;
  backend_options.device = config.backend().device();
  backend_options.threads = config.threads();
  SetNumerics(config.backend(), &backend_options);
  ASSIGN_OR_RETURN(setup->backend, CreateBackend(config.backend().name(), backend_options));

  ASSIGN_OR_RETURN(setup->train, data::OpenDataset(config.data(), data::Split::kTrain));
  ASSIGN_OR_RETURN(setup->test, data::OpenDataset(config.data(), data::Split::kTest));
  setup->num_classes = std::max(setup->train->num_classes(), setup->test->num_classes());
  ASSIGN_OR_RETURN(setup->eval_view, data::MakeEvalTransform(config.data(), setup->in_channels));
  LOG(INFO) << "data: " << setup->train->size() << " train and " << setup->test->size()
            << " test images, " << setup->num_classes << " classes";
  ASSIGN_OR_RETURN(setup->communicator, JoinEvalGroup(config, dist_timeout_s));
  return setup;
}

absl::StatusOr<EvaluatedEncoder> MakeEvaluatedEncoder(EvalSetup& setup,
                                                      EvalConfig::Encoders which) {
  EvaluatedEncoder e;
  e.which = which;
  e.name = EvalConfig::Encoders_Name(which);
  switch (which) {
    case EvalConfig::LEARNED: {
      ASSIGN_OR_RETURN(e.encoder, CreateLearnedEncoder(*setup.backend, setup.checkpoint));
      break;
    }
    case EvalConfig::RANDOM_INIT: {
      ASSIGN_OR_RETURN(e.encoder, setup.backend->CreateEncoder(setup.checkpoint.config.model(),
                                                               setup.config.random_init_seed()));
      break;
    }
    case EvalConfig::RAW_PIXELS: {
      e.source = RawPixelFeatures();
      e.feature_dim = static_cast<int64_t>(setup.eval_view->out_channels()) *
                      setup.eval_view->out_height() * setup.eval_view->out_width();
      return e;
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat("encoders: ", e.name, " is not one encoder"));
  }
  e.source = EncoderFeatures(*setup.backend, *e.encoder);
  e.feature_dim = e.encoder->backbone_dim();
  return e;
}

ExtractOptions ExtractionOptions(const EvalSetup& setup, data::Split split) {
  ExtractOptions o;
  o.loader.batch_size = setup.config.extract_batch_size();
  o.loader.num_workers = setup.config.data().num_workers();
  o.loader.prefetch_batches = setup.config.data().prefetch_batches();
  o.loader.on_corrupt_image = setup.config.data().on_corrupt_image();
  o.loader.shuffle = false;
  o.communicator = setup.communicator.get();
  o.max_images = split == data::Split::kTrain ? setup.config.max_train_images()
                                              : setup.config.max_test_images();
  return o;
}

ExtractOptions LoggedExtractionOptions(const EvalSetup& setup, const std::string& encoder_name,
                                       data::Split split) {
  const std::string split_name = split == data::Split::kTrain ? "train" : "test";
  ExtractOptions o = ExtractionOptions(setup, split);
  // The clock starts at the first batch callback's creation; shared state lives in the closure.
  auto start = std::make_shared<std::chrono::steady_clock::time_point>(
      std::chrono::steady_clock::now());
  auto last_log = std::make_shared<std::chrono::steady_clock::time_point>(*start);
  o.on_batch = [=](int64_t done, int64_t total) {
    const auto now = std::chrono::steady_clock::now();
    if (done == total || now - *last_log > std::chrono::seconds(10)) {
      const double s = std::chrono::duration<double>(now - *start).count();
      LOG(INFO) << encoder_name << " " << split_name << " features: " << done << "/" << total
                << " images, " << static_cast<int>(done / std::max(s, 1e-9)) << " img/s";
      *last_log = now;
    }
  };
  return o;
}

absl::StatusOr<FeatureSet> ExtractSplit(EvalSetup& setup, FeatureSource& source,
                                        const std::string& encoder_name, data::Split split) {
  return ExtractFeatures(split == data::Split::kTrain ? setup.train : setup.test,
                         setup.eval_view, source,
                         LoggedExtractionOptions(setup, encoder_name, split));
}

absl::Status CheckResultsWritable(const EvalSetup& setup) {
  if (setup.communicator->rank() != 0) return absl::OkStatus();
  return CheckResultsDirWritable(ResultsDir(setup.config));
}

absl::Status PublishResults(const EvalSetup& setup, const EvalResults& results) {
  if (setup.communicator->rank() != 0) {
    LOG(INFO) << "rank " << setup.communicator->rank() << ": results are written by rank 0";
    return absl::OkStatus();
  }
  const std::string dir = ResultsDir(setup.config);
  ASSIGN_OR_RETURN(std::string path, WriteEvalResultsOrPrint(dir, results));
  LOG(INFO) << "results written to " << path;
  // The results file holds the figures; an event file that cannot be written costs only the curve.
  if (absl::Status s = AppendEvalResultsToEvents(dir, results); !s.ok()) {
    LOG(WARNING) << "results not added to a TensorBoard event file: " << s;
  }
  return absl::OkStatus();
}

}  // namespace eval
}  // namespace moco
