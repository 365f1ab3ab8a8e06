#include "moco/pretrain/trainer.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "backends/distributed/dist_env.h"
#include "backends/distributed/gloo_communicator.h"
#include "eval/feature_extractor.h"
#include "eval/knn_eval.h"
#include "glog/logging.h"
#include "moco/config/config_io.h"
#include "moco/core/backend_registry.h"
#include "moco/core/method_registry.h"
#include "moco/core/status_macros.h"
#include "moco/interop/encoder_init.h"
#include "moco/run/checkpoint.h"
#include "moco/run/progress_display.h"
#include "moco/run/stop_signal.h"
#include "moco/validation/config_validator.h"

namespace moco {
namespace {

namespace fs = std::filesystem;

double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The seed of a global step's random choices: a function of the run's seed and the step only,
// so a resumed run draws the same permutations as an uninterrupted one.
uint64_t StepSeed(uint64_t seed, int64_t global_step) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(global_step) + 1;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// What every rank of a data-parallel run must agree on before the first step: the config (its
// run folder aside, which may be another path on another machine) and where the run starts.
std::string RendezvousTag(const ExperimentConfig& config, const RunStart& start) {
  ExperimentConfig c = config;
  c.mutable_run()->clear_run_dir();
  return distributed::RendezvousTagOf(absl::StrCat(
      ToTextProto(c), "\nstart step ",
      start.checkpoint.has_value() ? start.checkpoint->global_step : int64_t{-1}));
}

absl::Status Annotate(absl::Status status, const std::string& context) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

}  // namespace

Trainer::Trainer(PretrainOptions options, RunStart start)
    : options_(std::move(options)), start_(std::move(start)), config_(start_.config) {}

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(const PretrainOptions& options) {
  ASSIGN_OR_RETURN(RunStart start, ResolveRunStart(options));
  // Every rank validates for the world size before the rendezvous, so a bad config fails all
  // ranks at once instead of leaving the others waiting.
  ASSIGN_OR_RETURN(distributed::DistributedEnv env, distributed::DistributedEnvFromEnvironment());
  ValidationOptions validation;
  validation.world_size = env.world_size;
  RETURN_IF_ERROR(ValidateExperimentConfig(start.config, validation, options.config_source));
  std::unique_ptr<Trainer> trainer(new Trainer(options, std::move(start)));
  trainer->local_world_size_ = env.local_world_size;
  RETURN_IF_ERROR(trainer->JoinProcessGroup(env.world_size));
  if (trainer->rank() == 0) {
    // After the rendezvous: every rank has resolved the run folder before rank 0 writes to it.
    const std::string& run_dir = trainer->config_.run().run_dir();
    std::error_code ec;
    fs::create_directories(run_dir, ec);
    if (ec) return absl::UnknownError(absl::StrCat("cannot create ", run_dir, ": ", ec.message()));
    RETURN_IF_ERROR(WriteTextFileAtomically((fs::path(run_dir) / "config.pbtxt").string(),
                                            ToTextProto(trainer->config_)));
  }
  RETURN_IF_ERROR(trainer->OpenData());
  RETURN_IF_ERROR(trainer->BuildMethod());
  RETURN_IF_ERROR(trainer->Restore());
  return trainer;
}

absl::Status Trainer::JoinProcessGroup(int world_size) {
  if (world_size <= 1) {
    comm_ = MakeLocalCommunicator();
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(distributed::DistributedEnv env, distributed::DistributedEnvFromEnvironment());
  distributed::GlooOptions gloo;
  gloo.timeout = std::chrono::seconds(std::max(1, options_.distributed_timeout_s));
  gloo.rendezvous_tag = RendezvousTag(config_, start_);
  ASSIGN_OR_RETURN(comm_, distributed::CreateGlooCommunicator(env, gloo));
  LOG(INFO) << "rank " << comm_->rank() << " of " << comm_->world_size()
            << " joined the process group at " << env.master_addr << ":" << env.master_port
            << "; " << config_.run().batch_size() / comm_->world_size()
            << " images per rank of each global batch of " << config_.run().batch_size();
  return absl::OkStatus();
}

absl::StatusOr<bool> Trainer::StopAgreed() {
  const bool local = StopRequested();
  if (comm_->world_size() == 1) return local;
  float flag[1] = {local ? 1.0f : 0.0f};
  RETURN_IF_ERROR(comm_->AllReduceSumHost(absl::MakeSpan(flag)));
  return flag[0] > 0;
}

absl::Status Trainer::OpenData() {
  const DataConfig& data_config = config_.data();
  ASSIGN_OR_RETURN(data_.train, data::OpenDataset(data_config, data::Split::kTrain));
  ASSIGN_OR_RETURN(data_.test, data::OpenDataset(data_config, data::Split::kTest));
  const int channels = config_.model().in_channels();
  ASSIGN_OR_RETURN(auto train_view, data::MakeTrainTransform(data_config, channels));
  ASSIGN_OR_RETURN(data_.eval_view, data::MakeEvalTransform(data_config, channels));
  data::LoaderOptions loader;
  loader.batch_size = config_.run().batch_size();
  loader.rank = comm_->rank();
  loader.world_size = comm_->world_size();
  loader.num_workers = data_config.num_workers();
  loader.prefetch_batches = data_config.prefetch_batches();
  loader.num_views = 2;
  loader.seed = config_.run().seed();
  loader.max_batches_per_epoch = config_.run().max_steps_per_epoch();
  loader.on_corrupt_image = data_config.on_corrupt_image();
  ASSIGN_OR_RETURN(data_.loader, data::BatchLoader::Create(data_.train, train_view, loader));
  info_.steps_per_epoch = data_.loader->batches_per_epoch();
  if (info_.steps_per_epoch == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "run.batch_size (", config_.run().batch_size(), ") is larger than the training set (",
        data_.train->size(), " images)"));
  }
  info_.total_steps = config_.run().epochs() * info_.steps_per_epoch;
  return absl::OkStatus();
}

absl::Status Trainer::BuildMethod() {
  // run.threads 0 = all cores, shared by the ranks on this machine.
  ExperimentConfig backend_config = config_;
  if (backend_config.run().threads() == 0 && local_world_size_ > 1) {
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    backend_config.mutable_run()->set_threads(std::max(1, cores / local_world_size_));
  }
  ASSIGN_OR_RETURN(backend_, CreateBackendForConfig(backend_config));
  ASSIGN_OR_RETURN(method_, CreateTrainingMethod(config_, *backend_));
  ASSIGN_OR_RETURN(LearningRateSchedule schedule,
                   LearningRateSchedule::Create(config_.optimizer(), config_.run().epochs(),
                                                info_.steps_per_epoch));
  schedule_ = std::move(schedule);
  if (config_.run().online_probe().enabled()) {
    const int classes = std::max(data_.train->num_classes(), data_.test->num_classes());
    ASSIGN_OR_RETURN(probe_, OnlineProbe::Create(config_.run().online_probe(),
                                                 method_->evaluated_encoder().backbone_dim(),
                                                 classes, config_.run().seed()));
  }
  return absl::OkStatus();
}

absl::Status Trainer::Restore() {
  info_.run_dir = config_.run().run_dir();
  info_.config = config_;
  if (!start_.checkpoint.has_value()) return InitFromWeights();
  NamedArrays& arrays = start_.checkpoint->arrays;
  if (probe_ != nullptr) {
    RETURN_IF_ERROR(Annotate(probe_->ImportState(arrays), absl::StrCat("checkpoint in ", info_.run_dir)));
  }
  for (auto it = arrays.begin(); it != arrays.end();) {
    it = IsOnlineProbeEntry(it->first) ? arrays.erase(it) : std::next(it);
  }
  RETURN_IF_ERROR(Annotate(method_->ImportState(arrays),
                           absl::StrCat("checkpoint in ", info_.run_dir)));
  global_step_ = start_.checkpoint->global_step;
  start_.checkpoint->arrays.clear();  // the method holds the state now
  info_.start_step = global_step_;
  info_.resumed = true;
  LOG(INFO) << "Resuming " << info_.run_dir << " at epoch "
            << global_step_ / info_.steps_per_epoch + 1 << ", step " << global_step_;
  return absl::OkStatus();
}

absl::Status Trainer::InitFromWeights() {
  const std::string& path = config_.model().init_from();
  if (path.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(NamedArrays state, method_->ExportState());
  absl::StatusOr<NamedArrays> loaded = interop::StateWithWeightsFromFile(path, std::move(state));
  RETURN_IF_ERROR(Annotate(loaded.status(), "model.init_from"));
  RETURN_IF_ERROR(Annotate(method_->ImportState(*loaded), absl::StrCat("model.init_from ", path)));
  LOG(INFO) << "Encoders initialized from " << path;
  return absl::OkStatus();
}

void Trainer::AddObserver(std::unique_ptr<TrainingObserver> observer) {
  observers_.push_back(std::move(observer));
}

absl::StatusOr<PretrainSummary> Trainer::Run() {
  process_start_ = NowSeconds();
  summary_.rank = comm_->rank();
  if (global_step_ >= info_.total_steps) {
    // A finished run resumed: nothing to train, nothing new to report.
    summary_.already_finished = true;
    summary_.global_step = global_step_;
    summary_.epochs_done = config_.run().epochs();
    return summary_;
  }
  absl::Status status;
  for (auto& observer : observers_) {
    status = observer->OnRunStart(info_);
    if (!status.ok()) break;
  }
  if (status.ok()) status = TrainEpochs();
  if (status.ok() && !stopped_) status = RandomInitBaseline();
  if (!status.ok()) {
    NotifyRunEnd(RunEnd::Reason::kFailed, std::string(status.message()));
    return status;
  }
  NotifyRunEnd(stopped_ ? RunEnd::Reason::kStopped : RunEnd::Reason::kFinished, "");
  summary_.global_step = global_step_;
  summary_.stopped_by_signal = stopped_;
  if (stopped_ && comm_->rank() == 0) {
    LOG(INFO) << "Stopped (" << stop_reason_ << ") after step " << global_step_ << "; checkpoint written to "
              << CheckpointPath(info_.run_dir) << ". Continue with --resume.";
  }
  return summary_;
}

absl::Status Trainer::TrainEpochs() {
  ScopedStopSignalHandlers stop_handlers;  // restored on every return
  for (int64_t epoch = global_step_ / info_.steps_per_epoch; epoch < config_.run().epochs();
       ++epoch) {
    RETURN_IF_ERROR(RunEpoch(epoch));
    if (stopped_) return absl::OkStatus();
  }
  summary_.epochs_done = config_.run().epochs();
  return absl::OkStatus();
}

absl::Status Trainer::RunEpoch(int64_t epoch) {
  RETURN_IF_ERROR(data_.loader->StartEpoch(epoch));
  RETURN_IF_ERROR(SkipTrainedBatches(epoch));
  window_ = Window{NowSeconds(), 0, 0, comm_->blocked_seconds()};
  const double epoch_start = window_.start, epoch_comm_start = window_.comm_blocked_at_start;
  while (true) {
    const double wait_start = NowSeconds();
    ASSIGN_OR_RETURN(std::optional<data::HostBatch> batch, data_.loader->Next());
    window_.wait_seconds += NowSeconds() - wait_start;
    if (!batch.has_value()) break;
    RETURN_IF_ERROR(TrainStep(*batch, epoch));
    // A stop at an epoch's last step waits for EndOfEpoch (kNN row, due checkpoint).
    const bool epoch_end = global_step_ == (epoch + 1) * info_.steps_per_epoch;
    if (stopped_ && !epoch_end) return Stop(epoch, /*epoch_done=*/false, /*saved=*/false);
  }
  if (comm_->world_size() > 1) {
    const double seconds = std::max(1e-9, NowSeconds() - epoch_start);
    LOG(INFO) << "rank " << comm_->rank() << ": epoch " << epoch + 1 << " spent "
              << 100.0 * (comm_->blocked_seconds() - epoch_comm_start) / seconds
              << "% of its step time blocked in collectives";
  }
  RETURN_IF_ERROR(EndOfEpoch(epoch));
  return absl::OkStatus();
}

// A run stopped mid-epoch resumes at its next batch: the epoch's order is a function of
// (seed, epoch), so skipping the batches already trained on lines the data up exactly.
absl::Status Trainer::SkipTrainedBatches(int64_t epoch) {
  for (int64_t skip = global_step_ - epoch * info_.steps_per_epoch; skip > 0; --skip) {
    ASSIGN_OR_RETURN(auto skipped, data_.loader->Next());
    if (!skipped.has_value()) break;
  }
  return absl::OkStatus();
}

absl::Status Trainer::TrainStep(const data::HostBatch& batch, int64_t epoch) {
  const int64_t step_in_epoch = global_step_ - epoch * info_.steps_per_epoch;
  ASSIGN_OR_RETURN(TensorPtr view1, backend_->Upload(batch.views[0]));
  ASSIGN_OR_RETURN(TensorPtr view2, backend_->Upload(batch.views[1]));
  StepContext context;
  context.lr = schedule_->At(epoch, step_in_epoch);
  context.key_momentum = KeyMomentumAt(config_.moco(), global_step_, info_.total_steps);
  context.step_seed = StepSeed(config_.run().seed(), global_step_);
  context.communicator = comm_.get();
  context.gradient_bucket_bytes =
      static_cast<int64_t>(static_cast<double>(config_.run().gradient_bucket_mb()) * (1 << 20));
  absl::StatusOr<MethodStepResult> result = method_->Step(*view1, *view2, context);
  if (!result.ok()) {
    return Annotate(result.status(),
                    absl::StrCat("step ", global_step_ + 1, " (epoch ", epoch + 1,
                                 "); the last good checkpoint in ", info_.run_dir, " is kept"));
  }
  if (probe_ != nullptr) {
    RETURN_IF_ERROR(probe_->Train(method_->evaluated_encoder(), *view1, batch.labels, *comm_));
  }
  ++global_step_;
  ++window_.steps;
  summary_.last_loss = result->loss;
  const double window_seconds = std::max(1e-9, NowSeconds() - window_.start);

  StepStats stats;
  stats.global_step = global_step_;
  stats.epoch = epoch;
  stats.loss = result->loss;
  stats.top1 = result->top1;
  stats.loss_scale = result->loss_scale;
  stats.skipped_update = result->skipped_update;
  stats.skipped_steps = result->skipped_steps;
  stats.lr = context.lr;
  stats.key_momentum = context.key_momentum;
  stats.images_per_sec =
      static_cast<double>(window_.steps) * config_.run().batch_size() / window_seconds;
  stats.data_wait_share = std::min(1.0, window_.wait_seconds / window_seconds);
  if (comm_->world_size() > 1) {
    stats.comm_wait_share = std::min(
        1.0, (comm_->blocked_seconds() - window_.comm_blocked_at_start) / window_seconds);
  }
  stats.epoch_end = step_in_epoch + 1 == info_.steps_per_epoch;
  const bool periodic = global_step_ % config_.run().log_every_steps() == 0;
  ASSIGN_OR_RETURN(const bool stop_requested, StopAgreed());
  if (stop_requested) {
    stopped_ = true;
    stop_reason_ = "signal";
  } else if (options_.stop_at_step > 0 && global_step_ == options_.stop_at_step) {
    stopped_ = true;
    stop_reason_ = "--stop_at_step";
  }
  stats.log_row = periodic || stats.epoch_end || stopped_;
  RETURN_IF_ERROR(NotifyStep(stats));
  // A logged row closes the throughput window (an epoch's last row closes it by the epoch).
  if (periodic && !stats.epoch_end) {
    window_ = Window{NowSeconds(), 0, 0, comm_->blocked_seconds()};
  }
  return absl::OkStatus();
}

absl::Status Trainer::EndOfEpoch(int64_t epoch) {
  const int64_t epochs_done = epoch + 1;
  const int epochs = config_.run().epochs();
  EpochStats stats;
  stats.epochs_done = epochs_done;
  stats.global_step = global_step_;
  stats.skipped_corrupt_images = data_.loader->skipped_in_epoch();
  const int knn_every = config_.run().knn_every_epochs();
  if (epochs_done == epochs || (knn_every > 0 && epochs_done % knn_every == 0)) {
    ASSIGN_OR_RETURN(double top1, KnnTop1(method_->evaluated_encoder()));
    summary_.knn_top1 = top1;
    stats.knn_top1 = top1;
  }
  if (probe_ != nullptr) RETURN_IF_ERROR(MeasureProbe(stats));
  stats.elapsed_seconds = NowSeconds() - process_start_;
  stats.eta_seconds = EstimateEtaSeconds(stats.elapsed_seconds, global_step_ - info_.start_step,
                                         info_.total_steps - global_step_);
  RETURN_IF_ERROR(NotifyEpochEnd(stats));
  const bool save_due =
      epochs_done == epochs || epochs_done % config_.run().checkpoint_every_epochs() == 0;
  if (save_due) RETURN_IF_ERROR(Save(epochs_done));
  // A stop that arrived during the epoch's last step or its kNN monitor ends the run here.
  ASSIGN_OR_RETURN(const bool stop_requested, StopAgreed());
  if (!stopped_ && stop_requested) stop_reason_ = "signal";
  if (stopped_ || stop_requested) {
    stopped_ = epochs_done < epochs;
    if (stopped_) return Stop(epoch, /*epoch_done=*/true, /*saved=*/save_due);
  }
  return absl::OkStatus();
}

absl::Status Trainer::Save(int64_t epochs_done) {
  if (comm_->rank() != 0) return absl::OkStatus();  // every rank holds the same state
  Checkpoint checkpoint;
  checkpoint.epoch = epochs_done;
  checkpoint.global_step = global_step_;
  checkpoint.seed = config_.run().seed();
  checkpoint.config_text = ToTextProto(config_);
  checkpoint.backend = backend_->name();
  ASSIGN_OR_RETURN(checkpoint.arrays, method_->ExportState());
  if (probe_ != nullptr) checkpoint.arrays.merge(probe_->ExportState());
  return SaveCheckpointToRunDir(info_.run_dir, checkpoint);
}

absl::Status Trainer::Stop(int64_t epoch, bool epoch_done, bool saved) {
  stopped_ = true;
  summary_.epochs_done = epoch_done ? epoch + 1 : epoch;
  if (saved) return absl::OkStatus();
  return Save(summary_.epochs_done);
}

// The same classifier on this run's own starting point: an encoder freshly initialized from
// run.seed.
absl::Status Trainer::RandomInitBaseline() {
  if (!options_.random_init_baseline) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::unique_ptr<Encoder> random_encoder,
                   backend_->CreateEncoder(config_.model(), config_.run().seed()));
  ASSIGN_OR_RETURN(double top1, KnnTop1(*random_encoder));
  summary_.random_init_knn_top1 = top1;
  return absl::OkStatus();
}

// Feature extraction for the epoch-end monitors (kNN, online probe): the run's batch size,
// workers and corrupt-image policy, sharded over the ranks.
eval::ExtractOptions Trainer::MonitorExtractOptions() const {
  eval::ExtractOptions extract;
  extract.loader.batch_size = config_.run().batch_size();
  extract.loader.num_workers = config_.data().num_workers();
  extract.loader.on_corrupt_image = config_.data().on_corrupt_image();
  extract.communicator = comm_.get();  // data parallel: each rank extracts its shard
  return extract;
}

// Weighted kNN top-1 (percent) of the test split against the training split, both through
// `encoder`'s backbone: eval's own measurement, with the run's monitor settings.
absl::StatusOr<double> Trainer::KnnTop1(Encoder& encoder) {
  std::unique_ptr<eval::FeatureSource> source = eval::EncoderFeatures(*backend_, encoder);
  const eval::ExtractOptions extract = MonitorExtractOptions();
  eval::KnnSplits splits{data_.train, data_.test, data_.eval_view, extract, extract};
  splits.train_options.max_images = config_.run().knn_max_train_images();
  splits.test_options.max_images = config_.run().knn_max_test_images();
  eval::KnnOptions knn;
  knn.k = config_.run().knn_k();
  knn.temperature = config_.run().knn_temperature();
  knn.num_classes = std::max(data_.train->num_classes(), data_.test->num_classes());
  ASSIGN_OR_RETURN(eval::KnnMeasurement measured, eval::MeasureKnn(splits, *source, knn));
  return 100.0 * measured.metrics.top1;
}

absl::Status Trainer::MeasureProbe(EpochStats& stats) {
  stats.probe_train_top1 = probe_->TakeTrainTop1();
  std::unique_ptr<eval::FeatureSource> source =
      eval::EncoderFeatures(*backend_, method_->evaluated_encoder());
  eval::ExtractOptions extract = MonitorExtractOptions();
  extract.max_images = config_.run().knn_max_test_images();
  ASSIGN_OR_RETURN(eval::FeatureSet test,
                   eval::ExtractFeatures(data_.test, data_.eval_view, *source, extract));
  ASSIGN_OR_RETURN(double top1, probe_->Top1(test.features, test.labels));
  stats.probe_test_top1 = top1;
  return absl::OkStatus();
}

absl::Status Trainer::NotifyStep(const StepStats& step) {
  for (auto& observer : observers_) RETURN_IF_ERROR(observer->OnStep(step));
  return absl::OkStatus();
}

absl::Status Trainer::NotifyEpochEnd(const EpochStats& epoch) {
  for (auto& observer : observers_) RETURN_IF_ERROR(observer->OnEpochEnd(epoch));
  return absl::OkStatus();
}

void Trainer::NotifyRunEnd(RunEnd::Reason reason, const std::string& error) {
  RunEnd end;
  end.reason = reason;
  end.global_step = global_step_;
  end.knn_top1 = summary_.knn_top1;
  end.random_init_knn_top1 = summary_.random_init_knn_top1;
  end.error = error;
  for (auto& observer : observers_) {
    absl::Status status = observer->OnRunEnd(end);
    if (!status.ok()) LOG(WARNING) << "at the end of the run: " << status.message();
  }
}

}  // namespace moco
