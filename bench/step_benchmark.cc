// MoCo training-step throughput: steps/s, images/s and achieved GFLOP/s of the real MocoStep
// (moco/methods/moco_step.h) on a backend, compute-only or end to end with the batch loader.
//
//   bazel run //bench:step_benchmark -- --config=configs/quickstart.pbtxt --mode=e2e
//   bazel run //bench:step_benchmark -- --arch=resnet18 --cifar_stem --width=1 \
//       --image_size=32 --channels=1 --batch=256 --queue=4096 --threads=2 --mode=compute
//
// The config (default configs/quickstart.pbtxt) gives every setting; the model/run flags below
// override it when given. Modes:
//   compute  two fixed pairs of random views, uploaded once, alternated: the step alone;
//   e2e      the real BatchLoader on the config's dataset and augmentation (num_workers and
//            prefetch from data.*), each batch uploaded and stepped as moco/pretrain.cc does.
// --warmup steps are run first and not timed. lr and the key momentum are the config's
// constants (no schedule). --phases additionally times each part of the step (momentum update,
// query forward, key forward with shuffle, loss, backward, optimizer, enqueue, data) by running
// the same interface calls as MocoStep one at a time (a second, separate measurement).
//
// Output, one line per measurement (the same format as bench/moco_step_pytorch.py):
//   BENCH impl=cpp backend=torch mode=compute arch=resnet18 cifar_stem=1 width=1 channels=1
//     image_size=32 batch=256 queue=4096 threads=2 workers=2 warmup=1 steps=3
//     precision=fp32 channels_last=0 sec_per_step=... img_per_s=... gflop_per_step=...
//     gflop_per_s=... peak_gflop_per_s=... pct_of_peak=... loss=...
//   PHASES impl=cpp ... momentum_ms=... q_fwd_ms=... k_fwd_ms=... loss_ms=... backward_ms=...
//     optimizer_ms=... enqueue_ms=... data_ms=...
// FLOPs: bench/step_flops.h (convs + linears, query 3x forward, key 1x, InfoNCE N*K*dim*4);
// pct_of_peak relates them to the convolution ceiling measured first on this machine for the
// step's precision (bench/peak_flops.h; --peak_gflops to give one instead). --precision=bf16
// and --channels_last set backend.precision / channels_last (docs/PRECISION.md).
#include <malloc.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/peak_flops.h"
#include "bench/step_flops.h"
#include "data/batch_loader.h"
#include "data/dataset.h"
#include "data/transform.h"
#include "gflags/gflags.h"
#include "glog/logging.h"
#include "moco/core/backend_registry.h"
#include "moco/config/config_io.h"
#include "moco/validation/config_validator.h"
#include "moco/methods/moco_step.h"
#include "moco/core/status_macros.h"
#include "moco/core/backend_registry.h"
#include "moco/methods/moco_queue_state.h"

DEFINE_string(config, "configs/quickstart.pbtxt",
              "Experiment config (text proto); the flags below override its fields when given.");
DEFINE_string(mode, "compute", "compute (fixed pre-uploaded batches) or e2e (the real loader)");
DEFINE_string(arch, "", "overrides model.arch");
DEFINE_bool(cifar_stem, true, "overrides model.cifar_stem (only when given)");
DEFINE_double(width, 1.0, "overrides model.width_multiplier (only when given)");
DEFINE_int32(image_size, 0, "overrides data.image_size (only when given)");
DEFINE_int32(channels, 0, "overrides model.in_channels (only when given)");
DEFINE_int32(batch, 0, "overrides run.batch_size (only when given)");
DEFINE_int32(queue, 0, "overrides moco.queue_size (only when given)");
DEFINE_int32(threads, 0, "overrides run.threads (only when given)");
DEFINE_int32(bn_splits, 0, "overrides moco.bn_splits (only when given)");
DEFINE_string(backend, "", "overrides backend.name (only when given)");
DEFINE_int32(steps, 5, "timed steps");
DEFINE_int32(warmup, 1, "untimed steps before timing");
DEFINE_string(torch_profile, "",
              "torch backend: record LibTorch's op profiler over the timed steps into this "
              "chrome-trace JSON file (bench/op_profile.py tabulates it; the profiler slows "
              "the step, so its sec_per_step is not a measurement)");
DEFINE_bool(phases, false, "also time each phase of the step (a second measurement)");
DEFINE_string(precision, "", "overrides backend.precision: fp32 or bf16 (only when given)");
DEFINE_bool(channels_last, false, "overrides backend.channels_last (only when given)");
DEFINE_double(peak_gflops, 0,
              "the ceiling pct_of_peak refers to; 0: measure this machine's convolution ceiling "
              "for the step's precision first (bench/peak_flops.h)");

namespace moco {
namespace bench {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

bool Given(const char* flag) { return !gflags::GetCommandLineFlagInfoOrDie(flag).is_default; }

absl::StatusOr<ExperimentConfig> ResolveConfig() {
  ASSIGN_OR_RETURN(ExperimentConfig config, LoadExperimentConfig(FLAGS_config));
  if (Given("arch")) config.mutable_model()->set_arch(FLAGS_arch);
  if (Given("cifar_stem")) config.mutable_model()->set_cifar_stem(FLAGS_cifar_stem);
  if (Given("width")) config.mutable_model()->set_width_multiplier(FLAGS_width);
  if (Given("image_size")) config.mutable_data()->set_image_size(FLAGS_image_size);
  if (Given("channels")) config.mutable_model()->set_in_channels(FLAGS_channels);
  if (Given("batch")) config.mutable_run()->set_batch_size(FLAGS_batch);
  if (Given("queue")) config.mutable_moco()->set_queue_size(FLAGS_queue);
  if (Given("threads")) config.mutable_run()->set_threads(FLAGS_threads);
  if (Given("bn_splits")) config.mutable_moco()->set_bn_splits(FLAGS_bn_splits);
  if (Given("backend")) config.mutable_backend()->set_name(FLAGS_backend);
  if (Given("precision")) {
    if (FLAGS_precision != "fp32" && FLAGS_precision != "bf16") {
      return absl::InvalidArgumentError(
          absl::StrCat("--precision '", FLAGS_precision, "' must be fp32 or bf16"));
    }
    config.mutable_backend()->set_precision(FLAGS_precision == "bf16" ? BackendConfig::BF16
                                                                      : BackendConfig::FP32);
  }
  if (Given("channels_last")) config.mutable_backend()->set_channels_last(FLAGS_channels_last);
  if (FLAGS_mode != "compute" && FLAGS_mode != "e2e") {
    return absl::InvalidArgumentError(
        absl::StrCat("--mode '", FLAGS_mode, "' must be compute or e2e"));
  }
  if (FLAGS_steps < 1) return absl::InvalidArgumentError("--steps must be >= 1");
  if (FLAGS_warmup < 0) return absl::InvalidArgumentError("--warmup must be >= 0");
  if (!FLAGS_torch_profile.empty() && config.backend().name() != "torch") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--torch_profile records LibTorch ops; backend.name is '", config.backend().name(), "'"));
  }
  ValidationOptions validation;
  validation.check_paths = FLAGS_mode == "e2e";
  RETURN_IF_ERROR(ValidateExperimentConfig(config, validation, FLAGS_config + " (with flags)"));
  return config;
}

// Produces the two views of each step: fixed random batches, or the real loader.
class BatchSource {
 public:
  static absl::StatusOr<std::unique_ptr<BatchSource>> Create(const ExperimentConfig& config,
                                                             Backend& backend) {
    auto source = std::unique_ptr<BatchSource>(new BatchSource(backend));
    const int n = config.run().batch_size();
    const int c = config.model().in_channels();
    const int s = config.data().image_size();
    if (FLAGS_mode == "compute") {
      std::mt19937_64 rng(config.run().seed());
      std::normal_distribution<float> normal(0.f, 1.f);
      for (int i = 0; i < 4; ++i) {
        HostArray a({n, c, s, s});
        for (float& v : a.mutable_data()) v = normal(rng);
        ASSIGN_OR_RETURN(TensorPtr t, backend.Upload(a));
        source->fixed_.push_back(std::move(t));
      }
      return source;
    }
    const DataConfig& data_config = config.data();
    ASSIGN_OR_RETURN(auto train_set, data::OpenDataset(data_config, data::Split::kTrain));
    ASSIGN_OR_RETURN(auto transform, data::MakeTrainTransform(data_config, c));
    data::LoaderOptions options = data::LoaderOptionsFromConfig(
        data_config, n, config.run().seed(), /*max_batches_per_epoch=*/0);
    options.num_views = 2;
    ASSIGN_OR_RETURN(source->loader_,
                     data::BatchLoader::Create(train_set, transform, options));
    RETURN_IF_ERROR(source->loader_->StartEpoch(0));
    return source;
  }

  // The next step's views (uploaded).
  absl::Status Next(TensorPtr* view1, TensorPtr* view2) {
    if (loader_ == nullptr) {
      *view1 = fixed_[(2 * count_) % fixed_.size()];
      *view2 = fixed_[(2 * count_ + 1) % fixed_.size()];
      ++count_;
      return absl::OkStatus();
    }
    ASSIGN_OR_RETURN(std::optional<data::HostBatch> batch, loader_->Next());
    if (!batch.has_value()) {
      RETURN_IF_ERROR(loader_->StartEpoch(++epoch_));
      ASSIGN_OR_RETURN(batch, loader_->Next());
      if (!batch.has_value()) return absl::InternalError("the loader produced an empty epoch");
    }
    ASSIGN_OR_RETURN(*view1, backend_.Upload(batch->views[0]));
    ASSIGN_OR_RETURN(*view2, backend_.Upload(batch->views[1]));
    loader_->Recycle(std::move(*batch));
    return absl::OkStatus();
  }

  int workers() const { return loader_ == nullptr ? 0 : workers_; }
  void set_workers(int w) { workers_ = w; }

 private:
  explicit BatchSource(Backend& backend) : backend_(backend) {}
  Backend& backend_;
  std::vector<TensorPtr> fixed_;
  std::unique_ptr<data::BatchLoader> loader_;
  int64_t count_ = 0;
  int64_t epoch_ = 0;
  int workers_ = 0;
};

std::string Header(const ExperimentConfig& config, const std::string& tag, int workers) {
  return absl::StrFormat(
      "%s impl=cpp backend=%s mode=%s arch=%s cifar_stem=%d width=%g channels=%d image_size=%d "
      "batch=%d queue=%d threads=%d workers=%d warmup=%d steps=%d precision=%s channels_last=%d",
      tag, config.backend().name(), FLAGS_mode, config.model().arch(),
      config.model().cifar_stem() ? 1 : 0, config.model().width_multiplier(),
      config.model().in_channels(), config.data().image_size(), config.run().batch_size(),
      config.moco().queue_size(), config.run().threads(), workers, FLAGS_warmup, FLAGS_steps,
      config.backend().precision() == BackendConfig::BF16 ? "bf16" : "fp32",
      config.backend().channels_last() ? 1 : 0);
}

// Times the whole MocoStep::Run (the pipeline's step, unmodified).
absl::Status MeasureSteps(const ExperimentConfig& config, const StepFlops& flops,
                          double peak_gflops) {
  ASSIGN_OR_RETURN(std::unique_ptr<Backend> owned_backend, CreateBackendForConfig(config));
  ASSIGN_OR_RETURN(std::unique_ptr<MocoQueueState> state,
                   MocoQueueState::Create(config, *owned_backend));
  ASSIGN_OR_RETURN(std::unique_ptr<BatchSource> source,
                   BatchSource::Create(config, *state->backend));
  source->set_workers(config.data().num_workers());
  MocoStep step = state->MakeStep();
  const float lr = config.optimizer().lr();
  const float m = config.moco().momentum();
  float loss = 0;
  Clock::time_point start = Clock::now();
  std::unique_ptr<torch::autograd::profiler::RecordProfile> profile;
  for (int i = 0; i < FLAGS_warmup + FLAGS_steps; ++i) {
    if (i == FLAGS_warmup) {
      if (!FLAGS_torch_profile.empty()) {
        profile = std::make_unique<torch::autograd::profiler::RecordProfile>(FLAGS_torch_profile);
      }
      start = Clock::now();
    }
    TensorPtr v1, v2;
    RETURN_IF_ERROR(source->Next(&v1, &v2));
    ASSIGN_OR_RETURN(MocoStepResult r, step.Run(*v1, *v2, lr, m, /*shuffle_seed=*/1000 + i));
    loss = r.loss;
  }
  const double sec_per_step = Seconds(start, Clock::now()) / FLAGS_steps;
  profile.reset();  // writes the trace
  const double gflops = flops.step_flops / sec_per_step / 1e9;
  std::printf(
      "%s sec_per_step=%.4f img_per_s=%.2f gflop_per_step=%.3f gflop_per_s=%.2f "
      "peak_gflop_per_s=%.1f pct_of_peak=%.1f loss=%.4f\n",
      Header(config, "BENCH", source->workers()).c_str(), sec_per_step,
      config.run().batch_size() / sec_per_step, flops.step_flops / 1e9, gflops,
      peak_gflops, 100.0 * gflops / peak_gflops, loss);
  std::fflush(stdout);
  return absl::OkStatus();
}

// The same interface calls as MocoStep::Run (non-symmetric), one phase at a time, timed.
absl::Status MeasurePhases(const ExperimentConfig& config) {
  if (config.moco().symmetric_loss()) {
    return absl::InvalidArgumentError("--phases supports moco.symmetric_loss: false only");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Backend> owned_backend, CreateBackendForConfig(config));
  ASSIGN_OR_RETURN(std::unique_ptr<MocoQueueState> state,
                   MocoQueueState::Create(config, *owned_backend));
  ASSIGN_OR_RETURN(std::unique_ptr<BatchSource> source,
                   BatchSource::Create(config, *state->backend));
  source->set_workers(config.data().num_workers());
  Backend& backend = *state->backend;
  Encoder& query = *state->query;
  Encoder& key = *state->key;
  const char* names[] = {"data", "momentum", "q_fwd", "k_fwd", "loss", "backward", "optimizer",
                         "enqueue"};
  std::vector<double> total(8, 0.0);
  for (int i = 0; i < FLAGS_warmup + FLAGS_steps; ++i) {
    std::vector<double> t(8, 0.0);
    Clock::time_point a = Clock::now(), b;
    auto lap = [&](int phase) {
      b = Clock::now();
      t[phase] += Seconds(a, b);
      a = b;
    };
    TensorPtr v1, v2;
    RETURN_IF_ERROR(source->Next(&v1, &v2));
    lap(0);
    query.ZeroGrad();
    RETURN_IF_ERROR(key.MomentumUpdateFrom(query, config.moco().momentum()));
    lap(1);
    ASSIGN_OR_RETURN(TensorPtr q, query.Forward(*v1, true, true));
    lap(2);
    const std::vector<int64_t> perm = RandomPermutation(v2->shape()[0], 1000 + i);
    ASSIGN_OR_RETURN(TensorPtr shuffled, backend.GatherRows(*v2, perm));
    ASSIGN_OR_RETURN(TensorPtr k_shuffled, key.Forward(*shuffled, true, false));
    ASSIGN_OR_RETURN(TensorPtr k, backend.GatherRows(*k_shuffled, InversePermutation(perm)));
    lap(3);
    ASSIGN_OR_RETURN(ContrastiveLossResult loss,
                     state->loss->Compute(*q, *k, state->queue->keys(), config.moco().temperature()));
    lap(4);
    RETURN_IF_ERROR(query.Backward(*loss.grad_q));
    lap(5);
    RETURN_IF_ERROR(state->optimizer->Step(config.optimizer().lr()));
    lap(6);
    RETURN_IF_ERROR(state->queue->Enqueue(*k));
    lap(7);
    if (i >= FLAGS_warmup) {
      for (int p = 0; p < 8; ++p) total[p] += t[p];
    }
  }
  std::string line = Header(config, "PHASES", source->workers());
  for (int p = 0; p < 8; ++p) {
    absl::StrAppendFormat(&line, " %s_ms=%.1f", names[p], 1000.0 * total[p] / FLAGS_steps);
  }
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  return absl::OkStatus();
}

absl::Status Run() {
  ASSIGN_OR_RETURN(ExperimentConfig config, ResolveConfig());
  ASSIGN_OR_RETURN(StepFlops flops,
                   CountStepFlops(config.model(), config.data().image_size(),
                                  config.run().batch_size(), config.moco().queue_size(),
                                  config.moco().symmetric_loss()));
  double peak = FLAGS_peak_gflops;
  if (peak <= 0) {
    // The backend sets the thread count; the ceiling is measured with the same one.
    ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend, CreateBackendForConfig(config));
    peak = MeasurePeakFlops(config.backend().precision() == BackendConfig::BF16,
                            config.backend().device())
               .conv_gflop_per_s;
  }
  RETURN_IF_ERROR(MeasureSteps(config, flops, peak));
  if (FLAGS_phases) RETURN_IF_ERROR(MeasurePhases(config));
  return absl::OkStatus();
}

}  // namespace
}  // namespace bench
}  // namespace moco

int main(int argc, char** argv) {
  // As moco/pretrain_main.cc: keep large activation buffers in the heap instead of
  // mmap/munmap-ing them every step.
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  gflags::SetUsageMessage("MoCo training-step benchmark. See the file comment.");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  if (const char* wd = getenv("BUILD_WORKING_DIRECTORY")) {
    if (chdir(wd) != 0) LOG(WARNING) << "cannot chdir to " << wd;
  }
  const char* workspace = getenv("BUILD_WORKSPACE_DIRECTORY");
  if (workspace != nullptr && FLAGS_config[0] != '/' && access(FLAGS_config.c_str(), R_OK) != 0) {
    const std::string candidate = std::string(workspace) + "/" + FLAGS_config;
    if (access(candidate.c_str(), R_OK) == 0) FLAGS_config = candidate;
  }
  const absl::Status status = moco::bench::Run();
  if (!status.ok()) {
    LOG(ERROR) << status.message();
    return 1;
  }
  return 0;
}
