// Data-parallel MoCo v1/v2 and v3 over real processes: this binary re-executes itself as rank 0 and
// rank 1 of a Gloo group on loopback (MOCO_DP_TEST_WORKER=1 plus torchrun's variables). Each
// rank runs, per loss (asymmetric, symmetric), 5 steps of
//   world 2: local batch B = 4 (its rows of the global batch), BN per process (bn_splits 1),
// and, in the same process, the single-process reference
//   world 1: batch 2B = 8, bn_splits 2,
// on both backends, from the same state, batches and step seeds, so with the same global
// shuffling-BN permutation. Every step starts all four from one state (world-2 torch's after
// the previous step; left to run freely, the runs drift apart ~10x per step from 1e-7, as BN
// over groups of 4 samples amplifies float rounding). After every step each rank checks:
//   - world 2 against world 1, per backend: loss and top-1 (averaged over the ranks), this
//     rank's logits against world 1's rows of this rank, the queue and its pointer, the whole
//     state (both encoders' parameters and BN statistics, the SGD buffers);
//   - that the queue and the whole state are bit-identical on both ranks (a hash all-gathered);
//   - world-2 eigen against world-2 torch, the same quantities.
//
// MoCo v3 (MocoV3TwoProcesses... below): world 2 with local batch 4 and SyncBatchNorm against
// one process with batch 8 (v3 has no BN splits: SyncBN makes every BN see the global batch),
// 4 LARS steps per backend, same checks (loss, top1, whole state, rank fingerprints, eigen vs
// torch), for the resnet18 and for a vit_micro (SyncBN in its heads only); v3 has no logits or
// queue to compare.
// Then loss scaling under data parallelism on the v3 ResNet (RunV3LossScaling below).
//
// Tolerances: world 1 and world 2 compute the same sums in other orders (the gradient of the
// global batch as two half-batch sums averaged by the all-reduce; one GEMM over 8 samples vs two
// over 4), ~1e-7 relative per op; measured whole-state relative L2 1e-8..1e-7 per step on both
// backends. The bounds (below, kModelBound etc.) are >= 100x that; a wrong permutation, a
// missing gradient average or a rank enqueueing only its own keys gives differences of
// 1e-2..1. Between the backends the conformance suite's bounds apply
// (tests/backend_conformance_test.cc: a ReLU or max-pool tie can reroute one gradient).
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "backends/distributed/dist_env.h"
#include "backends/distributed/gloo_communicator.h"
#include "gtest/gtest.h"
#include "moco/core/backend_registry.h"
#include "moco/core/communicator.h"
#include "moco/core/method_registry.h"
#include "moco/core/status_macros.h"
#include "moco/methods/moco_queue_state.h"
#include "moco/methods/moco_step.h"
#include "tests/spawn_ranks.h"

namespace moco {
namespace {

constexpr int kLocalBatch = 4;
constexpr int kWorld = 2;
constexpr int kSteps = 5;
// Small gradient buckets, so the torch backend all-reduces many of them during the backward
// (backends/torch/torch_gradient_buckets.h); the eigen backend averages after it.
constexpr int64_t kGradientBucketBytes = 8 << 10;
constexpr double kRtol = 1e-4;          // per tensor, scale-relative: logits, queue
constexpr double kModelBound = 1e-4;    // whole-state relative L2: encoders, BN stats, queue
constexpr double kSgdBound = 1e-3;      // the same for the SGD buffers (world 2 vs world 1)
// Eigen vs torch: the conformance suite's bounds (measured here: model <= 4e-5, sgd <= 5e-4).
constexpr double kCrossBackendModelBound = 2e-3;
constexpr double kCrossBackendSgdBound = 5e-2;

ExperimentConfig Config(bool symmetric, int bn_splits) {
  ExperimentConfig c;
  ModelConfig* m = c.mutable_model();
  m->set_arch("resnet18");
  m->set_cifar_stem(true);
  m->set_width_multiplier(0.0625f);
  m->set_in_channels(3);
  m->set_feature_dim(16);
  m->set_mlp_head(true);
  MocoConfig* moco = c.mutable_moco();
  moco->set_queue_size(32);
  moco->set_temperature(0.2f);
  moco->set_symmetric_loss(symmetric);
  moco->set_bn_splits(bn_splits);
  OptimizerConfig* o = c.mutable_optimizer();
  o->set_lr(0.1f);
  o->set_momentum(0.9f);
  o->set_weight_decay(5e-4f);
  c.mutable_run()->set_seed(7);
  c.mutable_run()->set_batch_size(kLocalBatch * kWorld);
  return c;
}

HostArray Random(std::vector<int64_t> shape, uint64_t seed) {
  HostArray a(std::move(shape));
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd;
  for (float& v : a.mutable_data()) v = nd(rng);
  return a;
}

// Rows [first, first + count) of `a` along dim 0.
HostArray Rows(const HostArray& a, int64_t first, int64_t count) {
  std::vector<int64_t> shape = a.shape();
  const int64_t row = a.numel() / shape[0];
  shape[0] = count;
  HostArray out(shape);
  std::copy_n(a.data().begin() + first * row, count * row, out.mutable_data().begin());
  return out;
}

// "" when every |a - b| <= atol + rtol * max|b|, else the worst element.
std::string Close(const HostArray& a, const HostArray& b, double atol, double rtol,
                  const std::string& what) {
  if (a.shape() != b.shape()) {
    return absl::StrCat(what, ": shape ", ShapeToString(a.shape()), " vs ",
                        ShapeToString(b.shape()));
  }
  double scale = 0, worst = 0;
  size_t at = 0;
  for (float v : b.data()) scale = std::max(scale, static_cast<double>(std::fabs(v)));
  for (size_t i = 0; i < a.data().size(); ++i) {
    const double d = std::fabs(static_cast<double>(a.data()[i]) - b.data()[i]);
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
  }
  if (worst <= atol + rtol * scale) return "";
  return absl::StrCat(what, ": max |diff| ", worst, " at ", at, " (", a.data()[at], " vs ",
                      b.data()[at], "), scale ", scale);
}

// ||a - b|| / ||b|| over every array of `b`.
double RelativeL2(const NamedArrays& a, const NamedArrays& b) {
  double diff = 0, norm = 0;
  for (const auto& [name, array] : b) {
    const HostArray& other = a.at(name);
    for (size_t i = 0; i < array.data().size(); ++i) {
      const double d = static_cast<double>(other.data()[i]) - array.data()[i];
      diff += d * d;
      norm += static_cast<double>(array.data()[i]) * array.data()[i];
    }
  }
  return std::sqrt(diff / std::max(norm, 1e-30));
}

// FNV-1a over every array's name and bits.
int64_t Fingerprint(const NamedArrays& state) {
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](const void* p, size_t n) {
    const auto* c = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ c[i]) * 1099511628211ULL;
  };
  for (const auto& [name, array] : state) {
    mix(name.data(), name.size());
    mix(array.data().data(), array.data().size() * sizeof(float));
  }
  return static_cast<int64_t>(h);
}

// One backend's world-1 reference and world-2 run, side by side in this rank.
struct Side {
  std::string name;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<MocoQueueState> world1, world2;
  std::unique_ptr<MocoStep> step1, step2;
  MocoStepResult result1, result2;
};

absl::Status MakeSide(const std::string& name, bool symmetric, Side* side) {
  side->name = name;
  ASSIGN_OR_RETURN(side->backend, CreateBackend(name, BackendOptions{"cpu", 1}));
  ASSIGN_OR_RETURN(side->world1,
                   MocoQueueState::Create(Config(symmetric, /*bn_splits=*/kWorld), *side->backend));
  ASSIGN_OR_RETURN(side->world2,
                   MocoQueueState::Create(Config(symmetric, /*bn_splits=*/1), *side->backend));
  side->step1 = std::make_unique<MocoStep>(side->world1->MakeStep());
  side->step2 = std::make_unique<MocoStep>(side->world2->MakeStep());
  return absl::OkStatus();
}

// Both views of a global batch, whole (world 1) and this rank's rows (world 2), on `backend`.
struct Views {
  TensorPtr global1, global2, local1, local2;
};
absl::StatusOr<Views> UploadViews(Backend& backend, const HostArray& v1, const HostArray& v2,
                                  int rank) {
  const int64_t first = rank * kLocalBatch;
  Views x;
  ASSIGN_OR_RETURN(x.global1, backend.Upload(v1));
  ASSIGN_OR_RETURN(x.global2, backend.Upload(v2));
  ASSIGN_OR_RETURN(x.local1, backend.Upload(Rows(v1, first, kLocalBatch)));
  ASSIGN_OR_RETURN(x.local2, backend.Upload(Rows(v2, first, kLocalBatch)));
  return x;
}

// One step of both worlds on `side` from `state`: world 1 on the global batch, world 2 (with
// `comm`) on this rank's rows.
absl::Status StepSide(Side& side, const NamedArrays& state, const HostArray& v1,
                      const HostArray& v2, uint64_t seed, Communicator& comm) {
  RETURN_IF_ERROR(side.world1->Import(state));
  RETURN_IF_ERROR(side.world2->Import(state));
  ASSIGN_OR_RETURN(const Views x, UploadViews(*side.backend, v1, v2, comm.rank()));
  const float lr = 0.1f, m = 0.99f;
  ASSIGN_OR_RETURN(side.result1, side.step1->Run(*x.global1, *x.global2, lr, m, seed));
  ASSIGN_OR_RETURN(side.result2, side.step2->Run(*x.local1, *x.local2, lr, m, seed, &comm,
                                                 kGradientBucketBytes));
  return absl::OkStatus();
}

// Whole-state relative L2 difference of the entries whose name starts with `prefix`, split into
// the SGD buffers and the rest.
struct StateDifference {
  double model = 0;  // encoders' parameters and BN statistics, queue
  double sgd = 0;    // optimizer/ buffers
};
StateDifference Differences(const NamedArrays& a, const NamedArrays& b) {
  NamedArrays a_model, b_model, a_sgd, b_sgd;
  for (const auto& [name, array] : b) {
    const bool sgd = name.rfind("optimizer/", 0) == 0;
    (sgd ? b_sgd : b_model)[name] = array;
    (sgd ? a_sgd : a_model)[name] = a.at(name);
  }
  return {RelativeL2(a_model, b_model), RelativeL2(a_sgd, b_sgd)};
}

// "" or what is wrong between two runs of the same step from the same state.
std::string CompareStep(const MocoStepResult& got, const NamedArrays& got_state,
                        const MocoStepResult& want, const NamedArrays& want_state,
                        int64_t want_first_row, double model_bound, double sgd_bound,
                        const std::string& at) {
  if (std::fabs(got.loss - want.loss) > 1e-5 * std::max(1.0f, std::fabs(want.loss))) {
    return absl::StrCat(at, ": loss ", got.loss, " vs ", want.loss);
  }
  // A near-tie may flip one row of the global batch.
  if (std::fabs(got.top1 - want.top1) > 1.0 / (kLocalBatch * kWorld) + 1e-6) {
    return absl::StrCat(at, ": top1 ", got.top1, " vs ", want.top1);
  }
  auto got_logits = got.logits->ToHost();
  auto want_logits = want.logits->ToHost();
  if (!got_logits.ok() || !want_logits.ok()) return at + ": logits to host";
  HostArray want_rows = want_first_row < 0
                            ? *want_logits
                            : Rows(*want_logits, want_first_row, kLocalBatch);
  if (std::string e = Close(*got_logits, want_rows, 1e-5, kRtol, at + " logits"); !e.empty()) {
    return e;
  }
  if (std::string e = Close(got_state.at("queue/queue"), want_state.at("queue/queue"), 1e-5,
                            kRtol, at + " queue");
      !e.empty()) {
    return e;
  }
  if (got_state.at("queue/queue_ptr").data() != want_state.at("queue/queue_ptr").data()) {
    return at + ": queue pointers differ";
  }
  const StateDifference d = Differences(got_state, want_state);
  if (std::getenv("DP_TEST_VERBOSE") != nullptr) {
    std::cerr << at << ": relative L2 differences: model " << d.model << ", sgd " << d.sgd
              << "\n";
  }
  if (!(d.model < model_bound) || !(d.sgd < sgd_bound)) {
    return absl::StrCat(at, ": state differs: relative L2 model ", d.model, " (bound ",
                        model_bound, "), sgd buffers ", d.sgd, " (bound ", sgd_bound, ")");
  }
  return "";
}

// Every check of the header, for one loss variant; "" or the first failure.
std::string Run(Communicator& comm, bool symmetric) {
  const std::string tag =
      absl::StrCat("rank ", comm.rank(), symmetric ? " symmetric" : " asymmetric");
  Side torch, eigen;
  if (absl::Status s = MakeSide("torch", symmetric, &torch); !s.ok()) return s.ToString();
  if (absl::Status s = MakeSide("eigen", symmetric, &eigen); !s.ok()) return s.ToString();
  auto exported = torch.world2->Export();
  if (!exported.ok()) return exported.status().ToString();
  NamedArrays state = *std::move(exported);  // both backends start from torch's weights
  const int global = kLocalBatch * kWorld;
  for (int s = 0; s < kSteps; ++s) {
    const std::string at = absl::StrCat(tag, " step ", s + 1);
    const HostArray v1 = Random({global, 3, 8, 8}, 100 + s);
    const HostArray v2 = Random({global, 3, 8, 8}, 200 + s);
    for (Side* side : {&torch, &eigen}) {
      if (absl::Status st = StepSide(*side, state, v1, v2, 1000 + s, comm); !st.ok()) {
        return absl::StrCat(at, " ", side->name, ": ", st.ToString());
      }
    }
    NamedArrays after[2][2];  // [torch, eigen][world 1, world 2]
    Side* sides[2] = {&torch, &eigen};
    for (int b = 0; b < 2; ++b) {
      auto w1 = sides[b]->world1->Export();
      auto w2 = sides[b]->world2->Export();
      if (!w1.ok() || !w2.ok()) return at + ": export failed";
      after[b][0] = *std::move(w1);
      after[b][1] = *std::move(w2);
      // World 2 against world 1 on the same backend.
      if (std::string e = CompareStep(sides[b]->result2, after[b][1], sides[b]->result1,
                                      after[b][0], comm.rank() * kLocalBatch, kModelBound, kSgdBound,
                                      at + " " + sides[b]->name + " world 2 vs world 1");
          !e.empty()) {
        return e;
      }
      // Every rank's queue and whole state, bit for bit.
      auto prints = comm.AllGatherHost(Fingerprint(after[b][1]));
      if (!prints.ok()) return at + ": " + prints.status().ToString();
      for (int r = 1; r < kWorld; ++r) {
        if ((*prints)[r] != (*prints)[0]) {
          return absl::StrCat(at, " ", sides[b]->name, ": the state of rank ", r,
                              " differs from rank 0's");
        }
      }
    }
    // World-2 eigen against world-2 torch.
    if (std::string e = CompareStep(eigen.result2, after[1][1], torch.result2, after[0][1], -1,
                                    kCrossBackendModelBound, kCrossBackendSgdBound, at + " world 2 eigen vs torch");
        !e.empty()) {
      return e;
    }
    state = std::move(after[0][1]);  // the next step starts from world-2 torch's state
  }
  return "";
}

// ---- MoCo v3 ---------------------------------------------------------------------------------

constexpr int kV3Steps = 4;

// The v3 ResNet above, or (vit) vit_micro on the same 8 px images in 4 px patches, whose only
// BatchNorms are the heads'. LARS for both: its plain momentum on 1-D tensors keeps the
// rounding noise of the ViT's exactly-zero gradients (norm.bias, the key bias; see
// tests/backend_conformance_test) small, where AdamW would turn it into lr-sized steps.
ExperimentConfig V3Config(bool vit) {
  ExperimentConfig c = Config(/*symmetric=*/false, /*bn_splits=*/1);
  c.clear_moco();
  c.mutable_moco()->set_method("moco_v3");
  c.mutable_moco()->set_temperature(0.2f);
  ModelConfig* m = c.mutable_model();
  if (vit) {
    m->clear_cifar_stem();
    m->clear_width_multiplier();
    m->set_arch("vit_micro");
    m->set_image_size(8);
  }
  m->set_projector_hidden_dim(32);
  m->set_predictor_hidden_dim(32);
  OptimizerConfig* o = c.mutable_optimizer();
  o->set_algorithm(OptimizerConfig::LARS);
  o->set_lr(0.5f);
  o->set_momentum(0.9f);
  o->set_weight_decay(1e-6f);
  return c;
}

struct V3Side {
  std::string name;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<TrainingMethod> world1, world2;
  MethodStepResult result1, result2;
};

absl::Status MakeV3Side(const std::string& name, bool vit, V3Side* side) {
  side->name = name;
  ASSIGN_OR_RETURN(side->backend, CreateBackend(name, BackendOptions{"cpu", 1}));
  ASSIGN_OR_RETURN(side->world1, CreateTrainingMethod(V3Config(vit), *side->backend));
  ASSIGN_OR_RETURN(side->world2, CreateTrainingMethod(V3Config(vit), *side->backend));
  return absl::OkStatus();
}

absl::Status StepV3Side(V3Side& side, const NamedArrays& state, const HostArray& v1,
                        const HostArray& v2, int step, Communicator& comm) {
  RETURN_IF_ERROR(side.world1->ImportState(state));
  RETURN_IF_ERROR(side.world2->ImportState(state));
  ASSIGN_OR_RETURN(const Views x, UploadViews(*side.backend, v1, v2, comm.rank()));
  StepContext context;
  context.lr = 0.5f;
  context.key_momentum = 0.99f;
  context.step_seed = 1000 + step;
  ASSIGN_OR_RETURN(side.result1, side.world1->Step(*x.global1, *x.global2, context));
  context.communicator = &comm;
  context.gradient_bucket_bytes = kGradientBucketBytes;
  ASSIGN_OR_RETURN(side.result2, side.world2->Step(*x.local1, *x.local2, context));
  return absl::OkStatus();
}

std::string CompareV3(const MethodStepResult& got, const NamedArrays& got_state,
                      const MethodStepResult& want, const NamedArrays& want_state,
                      double model_bound, double optimizer_bound, const std::string& at) {
  if (std::fabs(got.loss - want.loss) > 1e-5 * std::max(1.0f, std::fabs(want.loss))) {
    return absl::StrCat(at, ": loss ", got.loss, " vs ", want.loss);
  }
  if (std::fabs(got.top1 - want.top1) > 1.0 / (kLocalBatch * kWorld) + 1e-6) {
    return absl::StrCat(at, ": top1 ", got.top1, " vs ", want.top1);
  }
  const StateDifference d = Differences(got_state, want_state);
  if (std::getenv("DP_TEST_VERBOSE") != nullptr) {
    std::cerr << at << ": loss " << got.loss << " vs " << want.loss
              << ", relative L2 differences: model " << d.model << ", optimizer " << d.sgd
              << "\n";
  }
  if (!(d.model < model_bound) || !(d.sgd < optimizer_bound)) {
    return absl::StrCat(at, ": state differs: relative L2 model ", d.model, " (bound ",
                        model_bound, "), optimizer ", d.sgd, " (bound ", optimizer_bound, ")");
  }
  return "";
}

// The v3 checks of the header for a ResNet or a ViT; "" or the first failure.
std::string RunV3(Communicator& comm, bool vit) {
  const std::string tag = absl::StrCat("rank ", comm.rank(), " moco_v3 ", vit ? "vit_micro" : "resnet18");
  V3Side torch, eigen;
  if (absl::Status s = MakeV3Side("torch", vit, &torch); !s.ok()) return s.ToString();
  if (absl::Status s = MakeV3Side("eigen", vit, &eigen); !s.ok()) return s.ToString();
  auto exported = torch.world2->ExportState();
  if (!exported.ok()) return exported.status().ToString();
  NamedArrays state = *std::move(exported);
  const int global = kLocalBatch * kWorld;
  for (int s = 0; s < kV3Steps; ++s) {
    const std::string at = absl::StrCat(tag, " step ", s + 1);
    const HostArray v1 = Random({global, 3, 8, 8}, 300 + s);
    const HostArray v2 = Random({global, 3, 8, 8}, 400 + s);
    V3Side* sides[2] = {&torch, &eigen};
    NamedArrays after[2][2];  // [torch, eigen][world 1, world 2]
    for (int b = 0; b < 2; ++b) {
      if (absl::Status st = StepV3Side(*sides[b], state, v1, v2, s, comm); !st.ok()) {
        return absl::StrCat(at, " ", sides[b]->name, ": ", st.ToString());
      }
      auto w1 = sides[b]->world1->ExportState();
      auto w2 = sides[b]->world2->ExportState();
      if (!w1.ok() || !w2.ok()) return at + ": export failed";
      after[b][0] = *std::move(w1);
      after[b][1] = *std::move(w2);
      if (std::string e = CompareV3(sides[b]->result2, after[b][1], sides[b]->result1,
                                    after[b][0], kModelBound, kSgdBound,
                                    at + " " + sides[b]->name + " world 2 vs world 1");
          !e.empty()) {
        return e;
      }
      auto prints = comm.AllGatherHost(Fingerprint(after[b][1]));
      if (!prints.ok()) return at + ": " + prints.status().ToString();
      for (int r = 1; r < kWorld; ++r) {
        if ((*prints)[r] != (*prints)[0]) {
          return absl::StrCat(at, " ", sides[b]->name, ": the state of rank ", r,
                              " differs from rank 0's");
        }
      }
    }
    if (std::string e = CompareV3(eigen.result2, after[1][1], torch.result2, after[0][1],
                                  kCrossBackendModelBound, kCrossBackendSgdBound,
                                  at + " world 2 eigen vs torch");
        !e.empty()) {
      return e;
    }
    state = std::move(after[0][1]);
  }
  return "";
}

NamedArrays WithoutLossScale(NamedArrays state) {
  for (auto it = state.begin(); it != state.end();) {
    it = absl::StartsWith(it->first, "loss_scale/") ? state.erase(it) : std::next(it);
  }
  return state;
}

// Loss scaling under data parallelism (torch, the v3 ResNet, buckets all-reduced during the
// backward): at 2^16 the world-2 run equals the unscaled world-2 run bit for bit (the scaled
// gradients travel through the buckets and are unscaled after the average); at 2^127 the
// gradients overflow and both ranks must skip the same steps and keep the same scale (their
// whole states, loss_scale/ included, have one fingerprint), with at least one skip and one
// update taken.
std::string RunV3LossScaling(Communicator& comm) {
  const std::string tag = absl::StrCat("rank ", comm.rank(), " moco_v3 loss scaling");
  auto backend = CreateBackend("torch", BackendOptions{"cpu", 1});
  if (!backend.ok()) return backend.status().ToString();
  const ExperimentConfig plain_config = V3Config(/*vit=*/false);
  ExperimentConfig exact_config = plain_config;
  exact_config.mutable_backend()->mutable_loss_scaling()->set_enabled(true);
  ExperimentConfig overflow_config = exact_config;
  overflow_config.mutable_backend()->mutable_loss_scaling()->set_init_scale(std::ldexp(1.0f, 127));
  std::unique_ptr<TrainingMethod> methods[3];
  const ExperimentConfig* configs[3] = {&plain_config, &exact_config, &overflow_config};
  for (int i = 0; i < 3; ++i) {
    auto m = CreateTrainingMethod(*configs[i], **backend);
    if (!m.ok()) return m.status().ToString();
    methods[i] = *std::move(m);
  }
  int skipped = 0, taken = 0;
  for (int s = 0; s < 12 && (skipped == 0 || taken == 0); ++s) {
    const std::string at = absl::StrCat(tag, " step ", s + 1);
    auto x = UploadViews(**backend, Random({kLocalBatch * kWorld, 3, 8, 8}, 500 + s),
                         Random({kLocalBatch * kWorld, 3, 8, 8}, 600 + s), comm.rank());
    if (!x.ok()) return x.status().ToString();
    StepContext context;
    context.lr = 0.5f;
    context.key_momentum = 0.99f;
    context.step_seed = 2000 + s;
    context.communicator = &comm;
    context.gradient_bucket_bytes = kGradientBucketBytes;
    NamedArrays states[3];
    bool overflow_skipped = false;
    for (int i = 0; i < 3; ++i) {
      auto r = methods[i]->Step(*x->local1, *x->local2, context);
      if (!r.ok()) return at + ": " + r.status().ToString();
      if (i == 2) overflow_skipped = r->skipped_update;
      auto state = methods[i]->ExportState();
      if (!state.ok()) return at + ": " + state.status().ToString();
      states[i] = *std::move(state);
    }
    if (!(states[0] == WithoutLossScale(states[1]))) {
      return at + ": the world-2 run scaled by 2^16 differs from the unscaled one";
    }
    auto prints = comm.AllGatherHost(Fingerprint(states[2]));
    if (!prints.ok()) return at + ": " + prints.status().ToString();
    if ((*prints)[1] != (*prints)[0]) {
      return at + ": with overflowing gradients the ranks' states (or scales) differ";
    }
    (overflow_skipped ? skipped : taken) += 1;
  }
  if (skipped == 0 || taken == 0) {
    return absl::StrCat(tag, ": expected skipped and taken updates at 2^127, got ", skipped,
                        " skipped and ", taken, " taken");
  }
  return "";
}

int Worker(bool v3) {
  absl::StatusOr<distributed::DistributedEnv> env = distributed::DistributedEnvFromEnvironment();
  if (!env.ok()) {
    std::cerr << "worker: " << env.status() << "\n";
    return 2;
  }
  distributed::GlooOptions options;
  options.timeout = std::chrono::seconds(60);
  absl::StatusOr<std::unique_ptr<Communicator>> comm =
      distributed::CreateGlooCommunicator(*env, options);
  if (!comm.ok()) {
    std::cerr << "worker: " << comm.status() << "\n";
    return 2;
  }
  if (v3) {
    for (bool vit : {false, true}) {
      const std::string error = RunV3(**comm, vit);
      if (!error.empty()) {
        std::cerr << "FAIL " << error << "\n";
        return 1;
      }
    }
    if (const std::string error = RunV3LossScaling(**comm); !error.empty()) {
      std::cerr << "FAIL " << error << "\n";
      return 1;
    }
    return 0;
  }
  for (bool symmetric : {false, true}) {
    const std::string error = Run(**comm, symmetric);
    if (!error.empty()) {
      std::cerr << "FAIL " << error << "\n";
      return 1;
    }
  }
  return 0;
}

TEST(DataParallelTest, TwoProcessesEqualOneProcessWithTwoBnSplitsOnBothBackends) {
  const std::vector<int> codes = testing::RunRanks(kWorld, {"MOCO_DP_TEST_WORKER=1"}, 180);
  EXPECT_EQ(codes, std::vector<int>({0, 0})) << "exit codes of ranks 0 and 1 (stderr above)";
}

TEST(DataParallelTest, MocoV3TwoProcessesWithSyncBatchNormEqualOneProcessOnBothBackends) {
  const std::vector<int> codes = testing::RunRanks(kWorld, {"MOCO_DP_TEST_WORKER=v3"}, 180);
  EXPECT_EQ(codes, std::vector<int>({0, 0})) << "exit codes of ranks 0 and 1 (stderr above)";
}

}  // namespace
}  // namespace moco

int main(int argc, char** argv) {
  if (const char* worker = std::getenv("MOCO_DP_TEST_WORKER"); worker && *worker != '\0') {
    return moco::Worker(/*v3=*/std::string(worker) == "v3");
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
