// Eigen vs LibTorch: images/s of one MoCo training step (moco/methods/moco_step.h) on each backend, in
// one process, same config, same thread count, same weights, queue and batches.
//
//   bazel run //backends/eigen:eigen_step_benchmark -- --steps=3 --threads=2
//
// Defaults are the quickstart encoder (configs/quickstart.pbtxt): resnet18, CIFAR stem, width
// 0.25, 1x28x28 images, batch 256, K 4096, feature dim 128, MLP head, bn_splits 8, T 0.1.
// The two backends alternate step by step (so machine load affects both alike); --warmup steps
// per backend are run first and not timed. --phases also times the parts of a step (query
// forward, key forward, loss, query backward, SGD) through the same interface calls.
// Output: one "BENCH backend=... img_per_s=..." line per backend, then the ratio.
#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gflags/gflags.h"
#include "glog/logging.h"
#include "moco/core/backend_registry.h"
#include "moco/methods/moco_step.h"
#include "moco/core/status_macros.h"

DEFINE_int32(batch, 256, "images per step");
DEFINE_int32(queue, 4096, "K");
DEFINE_int32(image_size, 28, "square image side");
DEFINE_int32(channels, 1, "image channels");
DEFINE_string(arch, "resnet18", "resnet18 | resnet34 | resnet50");
DEFINE_bool(cifar_stem, true, "CIFAR stem");
DEFINE_double(width, 0.25, "width multiplier");
DEFINE_int32(bn_splits, 8, "shuffling-BN groups");
DEFINE_int32(threads, 2, "intra-op threads of both backends");
DEFINE_int32(steps, 3, "timed steps per backend");
DEFINE_int32(warmup, 1, "untimed steps per backend");
DEFINE_bool(phases, false, "also time the parts of a step");
DEFINE_string(backends, "eigen,torch", "backends to compare, first is the one reported against");

namespace moco {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

struct Runner {
  std::string name;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Encoder> query, key;
  std::unique_ptr<KeyQueue> queue;
  std::unique_ptr<ContrastiveLoss> loss;
  std::unique_ptr<Optimizer> sgd;
  std::unique_ptr<MocoStep> step;
  TensorPtr v1, v2;
  double seconds = 0;
  float last_loss = 0;
  std::map<std::string, double> phase_seconds;
};

HostArray RandomImages(uint64_t seed) {
  HostArray a({FLAGS_batch, FLAGS_channels, FLAGS_image_size, FLAGS_image_size});
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd;
  for (float& v : a.mutable_data()) v = nd(rng);
  return a;
}

absl::Status TimePhases(Runner& r, const MocoConfig& mc, float lr) {
  auto t = Clock::now();
  ASSIGN_OR_RETURN(TensorPtr q, r.query->Forward(*r.v1, true, true));
  r.phase_seconds["query_forward"] += Since(t);
  t = Clock::now();
  ASSIGN_OR_RETURN(TensorPtr k, r.key->Forward(*r.v2, true, false));
  r.phase_seconds["key_forward"] += Since(t);
  t = Clock::now();
  ASSIGN_OR_RETURN(ContrastiveLossResult l, r.loss->Compute(*q, *k, r.queue->keys(), mc.temperature()));
  r.phase_seconds["loss"] += Since(t);
  t = Clock::now();
  r.query->ZeroGrad();
  RETURN_IF_ERROR(r.query->Backward(*l.grad_q));
  r.phase_seconds["query_backward"] += Since(t);
  t = Clock::now();
  RETURN_IF_ERROR(r.sgd->Step(lr));
  RETURN_IF_ERROR(r.key->MomentumUpdateFrom(*r.query, mc.momentum()));
  r.phase_seconds["sgd_and_momentum"] += Since(t);
  return absl::OkStatus();
}

absl::Status Run() {
  // Large activations would otherwise be mmap'ed and unmapped every step (ENVIRONMENT.md).
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  ModelConfig model;
  model.set_arch(FLAGS_arch);
  model.set_cifar_stem(FLAGS_cifar_stem);
  model.set_width_multiplier(static_cast<float>(FLAGS_width));
  model.set_in_channels(FLAGS_channels);
  model.set_feature_dim(128);
  model.set_mlp_head(true);
  MocoConfig mc;
  mc.set_queue_size(FLAGS_queue);
  mc.set_momentum(0.99f);
  mc.set_temperature(0.1f);
  mc.set_bn_splits(FLAGS_bn_splits);
  OptimizerConfig oc;
  oc.set_lr(0.06f);
  oc.set_momentum(0.9f);
  oc.set_weight_decay(5e-4f);

  std::vector<Runner> runners;
  for (const std::string& name : std::vector<std::string>(absl::StrSplit(FLAGS_backends, ','))) {
    Runner r;
    r.name = name;
    ASSIGN_OR_RETURN(r.backend, CreateBackend(name, BackendOptions{"cpu", FLAGS_threads}));
    runners.push_back(std::move(r));
  }
  if (runners.empty()) return absl::InvalidArgumentError("--backends is empty");
  const HostArray x1 = RandomImages(1), x2 = RandomImages(2);
  NamedArrays init, queue_init;
  for (size_t i = 0; i < runners.size(); ++i) {
    Runner& r = runners[i];
    ASSIGN_OR_RETURN(r.query, r.backend->CreateEncoder(model, 1));
    ASSIGN_OR_RETURN(r.key, r.backend->CreateEncoder(model, 1));
    ASSIGN_OR_RETURN(r.queue, r.backend->CreateQueue(mc.queue_size(), model.feature_dim(), 2));
    if (i == 0) {
      init = r.query->ExportState();
      queue_init = r.queue->ExportState();
    }
    RETURN_IF_ERROR(r.query->ImportState(init));
    RETURN_IF_ERROR(r.key->ImportState(init));
    RETURN_IF_ERROR(r.queue->ImportState(queue_init));
    ASSIGN_OR_RETURN(r.loss, r.backend->CreateInfoNceLoss());
    ASSIGN_OR_RETURN(r.sgd, r.backend->CreateSgd(*r.query, oc));
    r.step = std::make_unique<MocoStep>(*r.backend, *r.query, *r.key, *r.queue, *r.loss, *r.sgd,
                                        mc);
    ASSIGN_OR_RETURN(r.v1, r.backend->Upload(x1));
    ASSIGN_OR_RETURN(r.v2, r.backend->Upload(x2));
  }
  for (int s = 0; s < FLAGS_warmup + FLAGS_steps; ++s) {
    for (Runner& r : runners) {
      const auto t = Clock::now();
      ASSIGN_OR_RETURN(MocoStepResult res, r.step->Run(*r.v1, *r.v2, oc.lr(), mc.momentum(), s));
      const double dt = Since(t);
      if (s >= FLAGS_warmup) r.seconds += dt;
      r.last_loss = res.loss;
      LOG(INFO) << r.name << " step " << s << ": " << dt << " s, loss " << res.loss;
    }
  }
  if (FLAGS_phases) {
    for (int s = 0; s < FLAGS_steps; ++s) {
      for (Runner& r : runners) RETURN_IF_ERROR(TimePhases(r, mc, oc.lr()));
    }
  }
  for (const Runner& r : runners) {
    const double per_step = r.seconds / FLAGS_steps;
    std::printf(
        "BENCH backend=%s arch=%s cifar_stem=%d width=%g channels=%d image_size=%d batch=%d "
        "queue=%d bn_splits=%d threads=%d warmup=%d steps=%d sec_per_step=%.3f img_per_s=%.1f "
        "loss=%.4f\n",
        r.name.c_str(), FLAGS_arch.c_str(), FLAGS_cifar_stem ? 1 : 0, FLAGS_width,
        FLAGS_channels, FLAGS_image_size, FLAGS_batch, FLAGS_queue, FLAGS_bn_splits,
        FLAGS_threads, FLAGS_warmup, FLAGS_steps, per_step, FLAGS_batch / per_step, r.last_loss);
    if (FLAGS_phases) {
      std::printf("PHASES backend=%s", r.name.c_str());
      for (const auto& [phase, sec] : r.phase_seconds) {
        std::printf(" %s_ms=%.0f", phase.c_str(), 1000 * sec / FLAGS_steps);
      }
      std::printf("\n");
    }
  }
  if (runners.size() >= 2) {
    std::printf("RATIO %s/%s time per step = %.2f\n", runners[0].name.c_str(),
                runners[1].name.c_str(), runners[0].seconds / runners[1].seconds);
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace moco

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  const absl::Status status = moco::Run();
  if (!status.ok()) {
    LOG(ERROR) << status;
    return 1;
  }
  return 0;
}
