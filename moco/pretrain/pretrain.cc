#include "moco/pretrain/pretrain.h"

#include <chrono>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "data/batch_loader.h"
#include "data/dataset.h"
#include "data/transform.h"
#include "eval/feature_extractor.h"
#include "eval/knn_classifier.h"
#include "glog/logging.h"
#include "google/protobuf/util/message_differencer.h"
#include "moco/core/backend_registry.h"
#include "moco/core/split_mix.h"
#include "moco/config/config_io.h"
#include "moco/validation/config_validator.h"
#include "moco/methods/moco_step.h"
#include "moco/run/checkpoint.h"
#include "moco/run/metrics_log.h"
#include "moco/run/progress_display.h"
#include "moco/run/stop_signal.h"
#include "moco/schedules/schedules.h"
#include "moco/core/status_macros.h"
#include "moco/methods/training_state.h"

namespace moco {
namespace {

namespace fs = std::filesystem;

double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The shuffling-BN seed of a global step: a function of the run's seed and the step only, so a
// resumed run draws the same permutations as an uninterrupted one.
uint64_t ShuffleSeedForStep(uint64_t seed, int64_t global_step) {
  return SplitMix64Mix(seed * kSplitMix64Gamma + static_cast<uint64_t>(global_step) + 1);
}

absl::Status WriteTextFileAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    out.flush();
    if (!out) return absl::UnknownError(absl::StrCat("cannot write ", tmp));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return absl::UnknownError(absl::StrCat("cannot rename ", tmp, ": ", ec.message()));
  return absl::OkStatus();
}

// Resolves the config and the checkpoint to start from; refuses to start a new run over an
// existing one.
struct RunStart {
  ExperimentConfig config;
  std::optional<Checkpoint> checkpoint;
};

absl::StatusOr<RunStart> ResolveRunStart(const PretrainOptions& options) {
  RunStart start;
  std::string run_dir = options.run_dir_override;
  if (run_dir.empty() && options.config.has_value()) run_dir = options.config->run().run_dir();
  if (run_dir.empty()) {
    return absl::InvalidArgumentError("no run folder: give a config or --run_dir");
  }
  if (!options.resume) {
    if (!options.config.has_value()) return absl::InvalidArgumentError("no config given");
    if (fs::exists(CheckpointPath(run_dir)) || fs::exists(PreviousCheckpointPath(run_dir))) {
      return absl::FailedPreconditionError(absl::StrCat(
          "run folder ", run_dir, " already holds a checkpoint; pass --resume to continue that "
          "run, or set another run.run_dir (nothing was changed)"));
    }
    start.config = *options.config;
    start.config.mutable_run()->set_run_dir(run_dir);
    return start;
  }
  ASSIGN_OR_RETURN(Checkpoint checkpoint, ReadLatestCheckpoint(run_dir));
  RETURN_IF_ERROR(ParseTextProto(checkpoint.config_text, CheckpointPath(run_dir) + " (config)",
                                 &start.config));
  start.config.mutable_run()->set_run_dir(run_dir);
  if (options.config.has_value()) {
    ExperimentConfig given = *options.config;
    given.mutable_run()->set_run_dir(run_dir);
    std::string differences;
    google::protobuf::util::MessageDifferencer differencer;
    differencer.ReportDifferencesToString(&differences);
    if (!differencer.Compare(start.config, given)) {
      return absl::FailedPreconditionError(absl::StrCat(
          options.config_source, " differs from the config of the checkpoint in ", run_dir,
          " (a resumed run must use the same config; omit --config to use the checkpoint's):\n",
          differences));
    }
  }
  start.checkpoint = std::move(checkpoint);
  return start;
}

// Weighted kNN top-1 (percent) of the test split against the training split, both through
// `encoder`'s backbone.
absl::StatusOr<double> KnnTop1(const ExperimentConfig& config, Backend& backend, Encoder& encoder,
                               std::shared_ptr<const data::Dataset> train_set,
                               std::shared_ptr<const data::Dataset> test_set,
                               std::shared_ptr<const data::Transform> eval_transform) {
  std::unique_ptr<eval::FeatureSource> source = eval::EncoderFeatures(backend, encoder);
  eval::ExtractOptions options;
  options.loader.batch_size = config.run().batch_size();
  options.loader.num_workers = config.data().num_workers();
  options.loader.on_corrupt_image = config.data().on_corrupt_image();
  options.max_images = config.run().knn_max_train_images();
  ASSIGN_OR_RETURN(eval::FeatureSet train,
                   eval::ExtractFeatures(train_set, eval_transform, *source, options));
  options.max_images = config.run().knn_max_test_images();
  ASSIGN_OR_RETURN(eval::FeatureSet test,
                   eval::ExtractFeatures(test_set, eval_transform, *source, options));
  eval::KnnOptions knn;
  knn.k = config.run().knn_k();
  knn.temperature = config.run().knn_temperature();
  knn.num_classes = std::max(train_set->num_classes(), test_set->num_classes());
  ASSIGN_OR_RETURN(eval::ClassificationMetrics metrics,
                   eval::WeightedKnnClassify(train.features, train.labels, test.features,
                                             test.labels, knn));
  return 100.0 * metrics.top1;
}

absl::Status Annotate(absl::Status status, const std::string& context) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

}  // namespace

absl::StatusOr<PretrainSummary> RunPretraining(const PretrainOptions& options) {
  ASSIGN_OR_RETURN(RunStart start, ResolveRunStart(options));
  const ExperimentConfig& config = start.config;
  ValidationOptions validation;
  validation.known_backends = RegisteredBackendNames();
  RETURN_IF_ERROR(ValidateExperimentConfig(config, validation, options.config_source));
  const std::string& run_dir = config.run().run_dir();
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec) return absl::UnknownError(absl::StrCat("cannot create ", run_dir, ": ", ec.message()));
  RETURN_IF_ERROR(WriteTextFileAtomically((fs::path(run_dir) / "config.pbtxt").string(),
                                          ToTextProto(config)));

  // Data.
  const DataConfig& data_config = config.data();
  ASSIGN_OR_RETURN(auto train_set, data::OpenDataset(data_config, data::Split::kTrain));
  ASSIGN_OR_RETURN(auto test_set, data::OpenDataset(data_config, data::Split::kTest));
  const int channels = config.model().in_channels();
  ASSIGN_OR_RETURN(auto train_transform, data::MakeTrainTransform(data_config, channels));
  ASSIGN_OR_RETURN(auto eval_transform, data::MakeEvalTransform(data_config, channels));
  data::LoaderOptions loader_options;
  loader_options.batch_size = config.run().batch_size();
  loader_options.num_workers = data_config.num_workers();
  loader_options.prefetch_batches = data_config.prefetch_batches();
  loader_options.num_views = 2;
  loader_options.seed = config.run().seed();
  loader_options.max_batches_per_epoch = config.run().max_steps_per_epoch();
  loader_options.on_corrupt_image = data_config.on_corrupt_image();
  ASSIGN_OR_RETURN(auto loader,
                   data::BatchLoader::Create(train_set, train_transform, loader_options));
  const int64_t steps_per_epoch = loader->batches_per_epoch();
  if (steps_per_epoch == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "run.batch_size (", config.run().batch_size(), ") is larger than the training set (",
        train_set->size(), " images)"));
  }

  // Model state, fresh or from the checkpoint.
  ASSIGN_OR_RETURN(std::unique_ptr<TrainingState> state, TrainingState::Create(config));
  int64_t global_step = 0;
  if (start.checkpoint.has_value()) {
    RETURN_IF_ERROR(Annotate(state->Import(start.checkpoint->arrays),
                             absl::StrCat("checkpoint in ", run_dir)));
    global_step = start.checkpoint->global_step;
    LOG(INFO) << "Resuming " << run_dir << " at epoch " << global_step / steps_per_epoch + 1
              << ", step " << global_step;
  }
  const int epochs = config.run().epochs();
  const int64_t total_steps = epochs * steps_per_epoch;
  ASSIGN_OR_RETURN(LearningRateSchedule schedule,
                   LearningRateSchedule::Create(config.optimizer(), epochs, steps_per_epoch));
  ASSIGN_OR_RETURN(MetricsLog metrics,
                   MetricsLog::Open(MetricsPath(run_dir),
                                    start.checkpoint.has_value()
                                        ? std::optional<int64_t>(global_step)
                                        : std::nullopt));
  ProgressDisplay::Options progress_options;
  progress_options.log_every_steps = config.run().log_every_steps();
  ProgressDisplay progress(progress_options, epochs, steps_per_epoch, global_step);
  MocoStep step = state->MakeStep();

  PretrainSummary summary;
  auto save = [&](int64_t epochs_done) -> absl::Status {
    Checkpoint checkpoint;
    checkpoint.epoch = epochs_done;
    checkpoint.global_step = global_step;
    checkpoint.seed = config.run().seed();
    checkpoint.config_text = ToTextProto(config);
    checkpoint.backend = state->backend->name();
    ASSIGN_OR_RETURN(checkpoint.arrays, state->Export());
    return SaveCheckpointToRunDir(run_dir, checkpoint);
  };

  InstallStopSignalHandlers();
  const int batch_size = config.run().batch_size();
  // images/s is averaged over the steps since the last metrics row (a single step's rate
  // swings with the loader and the allocator); the window restarts with each epoch, so the
  // kNN monitor and checkpointing between epochs do not count as training time.
  double window_start = NowSeconds();
  int64_t window_steps = 0;
  for (int64_t epoch = global_step / steps_per_epoch; epoch < epochs; ++epoch) {
    RETURN_IF_ERROR(loader->StartEpoch(epoch));
    // A run stopped mid-epoch resumes at its next batch: the epoch's order is a function of
    // (seed, epoch), so skipping the batches already trained on lines the data up exactly.
    for (int64_t skip = global_step - epoch * steps_per_epoch; skip > 0; --skip) {
      ASSIGN_OR_RETURN(auto skipped, loader->Next());
      if (!skipped.has_value()) break;
    }
    MetricsRow row;
    window_start = NowSeconds();
    window_steps = 0;
    while (true) {
      ASSIGN_OR_RETURN(std::optional<data::HostBatch> batch, loader->Next());
      if (!batch.has_value()) break;
      const int64_t step_in_epoch = global_step - epoch * steps_per_epoch;
      ASSIGN_OR_RETURN(TensorPtr view1, state->backend->Upload(batch->views[0]));
      ASSIGN_OR_RETURN(TensorPtr view2, state->backend->Upload(batch->views[1]));
      const float lr = schedule.At(epoch, step_in_epoch);
      const float momentum = KeyMomentumAt(config.moco(), global_step, total_steps);
      absl::StatusOr<MocoStepResult> result =
          step.Run(*view1, *view2, lr, momentum, ShuffleSeedForStep(config.run().seed(),
                                                                    global_step));
      if (!result.ok()) {
        progress.Finish();
        return Annotate(result.status(),
                        absl::StrCat("step ", global_step + 1, " (epoch ", epoch + 1,
                                     "); the last good checkpoint in ", run_dir, " is kept"));
      }
      ++global_step;
      ++window_steps;
      const double images_per_sec = static_cast<double>(window_steps) * batch_size /
                                    std::max(1e-9, NowSeconds() - window_start);
      progress.Update(global_step, result->loss, lr, images_per_sec);
      summary.last_loss = result->loss;
      row = MetricsRow{global_step, epoch, result->loss, lr, images_per_sec, std::nullopt};
      const bool epoch_end = step_in_epoch + 1 == steps_per_epoch;
      if (global_step % config.run().log_every_steps() == 0 && !epoch_end) {
        RETURN_IF_ERROR(metrics.Append(row));
        window_start = NowSeconds();
        window_steps = 0;
      }
      const bool stop_here = options.stop_at_step > 0 && global_step == options.stop_at_step;
      if (StopRequested() || stop_here) {
        progress.Finish();
        RETURN_IF_ERROR(metrics.Append(row));
        RETURN_IF_ERROR(save(epoch));
        LOG(INFO) << "Stopped (" << (stop_here ? "--stop_at_step" : "signal") << ") after step "
                  << global_step
                  << "; checkpoint written to " << CheckpointPath(run_dir)
                  << ". Continue with --resume.";
        UninstallStopSignalHandlers();
        summary.stopped_by_signal = true;
        summary.global_step = global_step;
        summary.epochs_done = epoch;
        return summary;
      }
    }
    if (loader->skipped_in_epoch() > 0) {
      progress.Message(absl::StrCat("epoch ", epoch + 1, ": skipped ", loader->skipped_in_epoch(),
                                    " corrupt images (data.on_corrupt_image = SKIP)"));
    }
    const int64_t epochs_done = epoch + 1;
    const int knn_every = config.run().knn_every_epochs();
    if (epochs_done == epochs || (knn_every > 0 && epochs_done % knn_every == 0)) {
      ASSIGN_OR_RETURN(double top1, KnnTop1(config, *state->backend, *state->query, train_set,
                                            test_set, eval_transform));
      summary.knn_top1 = top1;
      row.knn_top1 = top1;
      progress.Message(absl::StrFormat("epoch %d/%d: kNN top-1 %.2f%% (k=%d, T=%g)", epochs_done,
                                       epochs, top1, config.run().knn_k(),
                                       config.run().knn_temperature()));
    }
    RETURN_IF_ERROR(metrics.Append(row));
    if (epochs_done == epochs || epochs_done % config.run().checkpoint_every_epochs() == 0) {
      RETURN_IF_ERROR(save(epochs_done));
    }
  }
  progress.Finish();
  UninstallStopSignalHandlers();
  summary.global_step = global_step;
  summary.epochs_done = epochs;

  if (options.random_init_baseline) {
    // The same classifier on this run's own starting point: an encoder freshly initialized from
    // run.seed.
    ASSIGN_OR_RETURN(std::unique_ptr<Encoder> random_encoder,
                     state->backend->CreateEncoder(config.model(), config.run().seed()));
    ASSIGN_OR_RETURN(double top1, KnnTop1(config, *state->backend, *random_encoder, train_set,
                                          test_set, eval_transform));
    summary.random_init_knn_top1 = top1;
  }
  return summary;
}

}  // namespace moco
