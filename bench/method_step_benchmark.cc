// Training-step throughput of any registered method (moco.method; made for MoCo v3 with ResNet or
// ViT backbones): seconds per step, images/s and achieved GFLOP/s of TrainingMethod::Step on two
// fixed random views, compute only (the data pipeline is step_benchmark's --mode=e2e).
//
//   bazel run //bench:method_step_benchmark -- --config=configs/moco_v3_vit_quickstart.pbtxt
//   bazel run //bench:method_step_benchmark -- --config=configs/moco_v3_vit_small_imagenet.pbtxt \
//       --backend=eigen --device=cpu --batch=8 --threads=2 --steps=2
//
// The flags override the config's fields when given. lr and the key momentum are the config's
// constants (no schedule). FLOPs: bench/step_flops.h (CountMocoV3StepFlops for moco_v3,
// CountStepFlops for the queue methods). pct_of_peak relates them to this machine's measured
// ceiling for the step's precision (bench/peak_flops.h): the GEMM ceiling for ViT backbones
// (their work is matrix products), the convolution ceiling for ResNets.
//
// Output (the same key=value format as step_benchmark):
//   BENCH impl=cpp tool=method_step backend=eigen method=moco_v3 arch=vit_micro image_size=28
//     batch=64 threads=2 precision=fp32 warmup=1 steps=3 sec_per_step=... img_per_s=...
//     gflop_per_step=... gflop_per_s=... peak=gemm peak_gflop_per_s=... pct_of_peak=... loss=...
#include <malloc.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "bench/peak_flops.h"
#include "bench/step_flops.h"
#include "gflags/gflags.h"
#include "glog/logging.h"
#include "moco/config/config_io.h"
#include "moco/core/backend_registry.h"
#include "moco/core/method_registry.h"
#include "moco/core/model_spec.h"
#include "moco/core/status_macros.h"
#include "moco/validation/config_validator.h"

DEFINE_string(config, "configs/moco_v3_vit_quickstart.pbtxt",
              "Experiment config (text proto); the flags below override its fields when given.");
DEFINE_string(arch, "", "overrides model.arch (and, for a ViT, model.image_size with "
                        "--image_size)");
DEFINE_int32(image_size, 0, "overrides data.image_size (and a ViT's model.image_size)");
DEFINE_int32(batch, 0, "overrides run.batch_size");
DEFINE_int32(threads, 0, "overrides run.threads");
DEFINE_string(backend, "", "overrides backend.name");
DEFINE_string(device, "", "overrides backend.device");
DEFINE_string(precision, "", "overrides backend.precision: fp32 or bf16");
DEFINE_int32(steps, 3, "timed steps");
DEFINE_int32(warmup, 1, "untimed steps before timing");
DEFINE_double(peak_gflops, 0, "the ceiling pct_of_peak refers to; 0: measure it first");

namespace moco {
namespace bench {
namespace {

bool Given(const char* flag) { return !gflags::GetCommandLineFlagInfoOrDie(flag).is_default; }

absl::StatusOr<ExperimentConfig> ResolveConfig() {
  ASSIGN_OR_RETURN(ExperimentConfig config, LoadExperimentConfig(FLAGS_config));
  if (Given("arch")) config.mutable_model()->set_arch(FLAGS_arch);
  if (Given("image_size")) {
    config.mutable_data()->set_image_size(FLAGS_image_size);
    if (FindViTArchitecture(config.model().arch()) != nullptr) {
      config.mutable_model()->set_image_size(FLAGS_image_size);
    }
  }
  if (Given("batch")) config.mutable_run()->set_batch_size(FLAGS_batch);
  if (Given("threads")) config.mutable_run()->set_threads(FLAGS_threads);
  if (Given("backend")) config.mutable_backend()->set_name(FLAGS_backend);
  if (Given("device")) config.mutable_backend()->set_device(FLAGS_device);
  if (Given("precision")) {
    if (FLAGS_precision != "fp32" && FLAGS_precision != "bf16") {
      return absl::InvalidArgumentError(
          absl::StrCat("--precision '", FLAGS_precision, "' must be fp32 or bf16"));
    }
    config.mutable_backend()->set_precision(FLAGS_precision == "bf16" ? BackendConfig::BF16
                                                                      : BackendConfig::FP32);
  }
  if (FLAGS_steps < 1) return absl::InvalidArgumentError("--steps must be >= 1");
  if (FLAGS_warmup < 0) return absl::InvalidArgumentError("--warmup must be >= 0");
  ValidationOptions validation;
  validation.check_paths = false;
  RETURN_IF_ERROR(ValidateExperimentConfig(config, validation, FLAGS_config + " (with flags)"));
  return config;
}

absl::StatusOr<StepFlops> StepFlopsOf(const ExperimentConfig& config) {
  const int image_size = config.data().image_size(), batch = config.run().batch_size();
  if (config.moco().method() == "moco_v3") {
    return CountMocoV3StepFlops(config.model(), image_size, batch);
  }
  return CountStepFlops(config.model(), image_size, batch, config.moco().queue_size(),
                        config.moco().symmetric_loss());
}

absl::Status Run() {
  ASSIGN_OR_RETURN(const ExperimentConfig config, ResolveConfig());
  ASSIGN_OR_RETURN(const StepFlops flops, StepFlopsOf(config));
  ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend, CreateBackendForConfig(config));
  const bool vit = FindViTArchitecture(config.model().arch()) != nullptr;
  double peak = FLAGS_peak_gflops;
  if (peak <= 0) {
    // Measured with the thread count the backend set; LibTorch's kernels as the reference
    // ceiling for either backend.
    const PeakFlops p = MeasurePeakFlops(config.backend().precision() == BackendConfig::BF16,
                                         config.backend().device());
    peak = vit ? p.gemm_gflop_per_s : p.conv_gflop_per_s;
  }
  ASSIGN_OR_RETURN(std::unique_ptr<TrainingMethod> method, CreateTrainingMethod(config, *backend));

  const int n = config.run().batch_size(), c = config.model().in_channels();
  const int s = config.data().image_size();
  std::mt19937_64 rng(config.run().seed());
  std::normal_distribution<float> normal(0.f, 1.f);
  TensorPtr views[2];
  for (TensorPtr& view : views) {
    HostArray a({n, c, s, s});
    for (float& v : a.mutable_data()) v = normal(rng);
    ASSIGN_OR_RETURN(view, backend->Upload(a));
  }
  StepContext context;
  context.lr = config.optimizer().lr();
  context.key_momentum = config.moco().momentum();
  MethodStepResult last;
  using Clock = std::chrono::steady_clock;
  Clock::time_point start;
  for (int i = 0; i < FLAGS_warmup + FLAGS_steps; ++i) {
    if (i == FLAGS_warmup) start = Clock::now();
    context.step_seed = static_cast<uint64_t>(i);
    ASSIGN_OR_RETURN(last, method->Step(*views[0], *views[1], context));
  }
  const double sec = std::chrono::duration<double>(Clock::now() - start).count() / FLAGS_steps;
  const double gflop = flops.step_flops / 1e9;
  std::printf(
      "BENCH impl=cpp tool=method_step backend=%s method=%s arch=%s image_size=%d batch=%d "
      "threads=%d precision=%s warmup=%d steps=%d sec_per_step=%.4f img_per_s=%.2f "
      "gflop_per_step=%.2f gflop_per_s=%.1f peak=%s peak_gflop_per_s=%.1f pct_of_peak=%.1f "
      "loss=%.5f\n",
      config.backend().name().c_str(), config.moco().method().c_str(),
      config.model().arch().c_str(), s, n, config.run().threads(),
      config.backend().precision() == BackendConfig::BF16 ? "bf16" : "fp32", FLAGS_warmup,
      FLAGS_steps, sec, n / sec, gflop, gflop / sec, vit ? "gemm" : "conv", peak,
      100.0 * gflop / sec / peak, last.loss);
  std::fflush(stdout);
  return absl::OkStatus();
}

}  // namespace
}  // namespace bench
}  // namespace moco

int main(int argc, char** argv) {
  mallopt(M_MMAP_MAX, 0);  // as pretrain_main.cc: keep activation buffers in the heap
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  gflags::SetUsageMessage("Training-step benchmark of any method. See the file comment.");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  if (const char* wd = getenv("BUILD_WORKING_DIRECTORY")) {
    if (chdir(wd) != 0) LOG(WARNING) << "cannot chdir to " << wd;
  }
  absl::Status status = moco::bench::Run();
  if (!status.ok()) {
    std::fprintf(stderr, "method_step_benchmark: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
