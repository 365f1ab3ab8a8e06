// CPU reference debugging: runs MoCo steps of a real config on the torch and eigen backends
// (v1/v2, or moco_v3 through its TrainingMethod: then the key encoder's layer outputs and the
// logits are not shown)
// from the same weights, queue and batches, and prints, layer by layer in network order, how far
// apart they are after each step:
//   - the loss and logits;
//   - every layer's output in the step's query forward ("act") and shuffled key forward
//     ("k-act"), in execution order (moco/core/activation_capture.h; with the symmetric loss,
//     the second of the two contrastive passes);
//   - per layer, the query encoder's parameter gradients of the step ("grad");
//   - the parameters after the SGD step ("param") and the BN running statistics of both
//     encoders ("bn", "k-bn").
// For each group it names the first tensor (in network order) whose max relative difference
// exceeds --tolerance: for activations, the first layer where the backends part.
//
//   bazel run //tests:compare_backends -- --config=configs/quickstart.pbtxt --steps=2 --batch=32
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "data/batch_loader.h"
#include "data/dataset.h"
#include "data/transform.h"
#include "gflags/gflags.h"
#include "moco/config/config_io.h"
#include "moco/validation/config_validator.h"
#include "moco/run/pipeline_main.h"
#include "moco/core/status_macros.h"
#include "moco/core/backend_registry.h"
#include "moco/core/method_registry.h"
#include "moco/methods/moco_queue_state.h"

DEFINE_string(config, "configs/quickstart.pbtxt", "Experiment config to compare on.");
DEFINE_int32(steps, 1, "MoCo steps to run on both backends.");
DEFINE_int32(batch, 0, "Overrides run.batch_size (0 = the config's); keep it small for speed.");
DEFINE_double(tolerance, 1e-2,
              "Max relative difference (|a-b| / max|b|, per tensor) before a layer is flagged.");
DEFINE_bool(all, false, "Print every tensor, not only the first flagged ones and a summary.");

namespace moco {
namespace {

struct Difference {
  double max_abs = 0;
  double max_rel = 0;  // max_abs / max |reference|
};

Difference Compare(const HostArray& a, const HostArray& b) {
  Difference d;
  double scale = 0;
  for (size_t i = 0; i < a.data().size() && i < b.data().size(); ++i) {
    d.max_abs = std::max(d.max_abs, static_cast<double>(std::fabs(a.data()[i] - b.data()[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(b.data()[i])));
  }
  if (a.data().size() != b.data().size()) d.max_abs = INFINITY;
  d.max_rel = scale > 0 ? d.max_abs / scale : d.max_abs;
  return d;
}

// Network order: stem, layer1..layer4 (block by block), head; then the name.
std::vector<std::string> NetworkOrder(const NamedArrays& arrays) {
  std::vector<std::string> names;
  for (const auto& [name, array] : arrays) names.push_back(name);
  auto rank = [](const std::string& n) {
    static const std::regex layer(R"(layer(\d+)\.(\d+)\.)");
    static const std::regex block(R"(^blocks\.(\d+)\.)");  // ViT blocks, numerically
    std::smatch m;
    if (std::regex_search(n, m, layer)) return std::stoi(m[1]) * 1000 + std::stoi(m[2]) * 10;
    if (std::regex_search(n, m, block)) return 1000 + std::stoi(m[1]) * 10;
    if (n.rfind("norm.", 0) == 0) return 99999;  // the ViT's final LayerNorm
    if (n.rfind("fc", 0) == 0 || n.rfind("head", 0) == 0) return 100000;
    if (n.rfind("predictor", 0) == 0) return 100001;
    return 0;  // stem: conv1, bn1; ViT: cls_token, pos_embed, patch_embed
  };
  std::stable_sort(names.begin(), names.end(), [&](const std::string& a, const std::string& b) {
    return std::make_pair(rank(a), a) < std::make_pair(rank(b), b);
  });
  return names;
}

// Prints the comparison of one group of tensors, visited in `order`; returns the first flagged
// name or "".
std::string Report(const std::string& what, const std::vector<std::string>& order,
                   const NamedArrays& tested, const NamedArrays& reference) {
  std::string first_flagged;
  double worst = 0;
  std::string worst_name;
  for (const std::string& name : order) {
    if (!tested.count(name) || !reference.count(name)) continue;
    const Difference d = Compare(tested.at(name), reference.at(name));
    const bool flagged = d.max_rel > FLAGS_tolerance;
    if (flagged && first_flagged.empty()) first_flagged = name;
    if (d.max_rel > worst) {
      worst = d.max_rel;
      worst_name = name;
    }
    if (FLAGS_all || (flagged && name == first_flagged)) {
      std::printf("  %-6s %-40s max|diff| %.3e  rel %.3e%s\n", what.c_str(), name.c_str(),
                  d.max_abs, d.max_rel, flagged ? "  <-- exceeds tolerance" : "");
    }
  }
  std::printf("  %-6s worst: %s (rel %.3e)%s\n", what.c_str(), worst_name.c_str(), worst,
              first_flagged.empty() ? "" : absl::StrFormat("; first over tolerance: %s",
                                                           first_flagged).c_str());
  return first_flagged;
}

// Report over the names of `reference` in network order that `keep` selects.
std::string Report(const std::string& what, const NamedArrays& tested,
                   const NamedArrays& reference, bool (*keep)(const std::string&)) {
  std::vector<std::string> order;
  for (const std::string& name : NetworkOrder(reference)) {
    if (keep(name)) order.push_back(name);
  }
  return Report(what, order, tested, reference);
}

absl::StatusOr<ActivationCapture*> CaptureOf(Encoder& encoder) {
  ActivationCapture* capture = encoder.activation_capture();
  if (capture == nullptr) {
    return absl::UnimplementedError("the encoder offers no activation capture");
  }
  return capture;
}

// Report over layer outputs, in the reference's execution order.
absl::Status ReportActivations(const std::string& what, Encoder& tested, Encoder& reference) {
  ASSIGN_OR_RETURN(ActivationCapture * tested_capture, CaptureOf(tested));
  ASSIGN_OR_RETURN(ActivationCapture * reference_capture, CaptureOf(reference));
  std::vector<std::string> order;
  NamedArrays tested_arrays, reference_arrays;
  for (const auto& [name, array] : reference_capture->Activations()) {
    order.push_back(name);
    reference_arrays[name] = array;
  }
  for (const auto& [name, array] : tested_capture->Activations()) tested_arrays[name] = array;
  Report(what, order, tested_arrays, reference_arrays);
  return absl::OkStatus();
}

bool IsBnStat(const std::string& n) {
  return n.find("running_mean") != std::string::npos || n.find("running_var") != std::string::npos;
}
bool IsParameter(const std::string& n) {
  return !IsBnStat(n) && n.find("num_batches_tracked") == std::string::npos;
}

absl::StatusOr<std::unique_ptr<data::BatchLoader>> MakeLoader(const ExperimentConfig& config) {
  ASSIGN_OR_RETURN(auto dataset, data::OpenDataset(config.data(), data::Split::kTrain));
  ASSIGN_OR_RETURN(auto transform,
                   data::MakeTrainTransform(config.data(), config.model().in_channels()));
  data::LoaderOptions options;
  options.batch_size = config.run().batch_size();
  options.num_workers = config.data().num_workers();
  options.seed = config.run().seed();
  ASSIGN_OR_RETURN(auto loader, data::BatchLoader::Create(dataset, transform, options));
  RETURN_IF_ERROR(loader->StartEpoch(0));
  return loader;
}

// The entries of a method's state under `prefix` ("query/", "key/"), without it.
NamedArrays Under(const NamedArrays& state, const std::string& prefix) {
  NamedArrays out;
  for (const auto& [name, a] : state) {
    if (name.rfind(prefix, 0) == 0) out[name.substr(prefix.size())] = a;
  }
  return out;
}

// Methods without a queue (moco_v3), through the TrainingMethod interface: the loss, the query
// encoder's layer outputs of its last forward (the second view's) and gradients, and both
// encoders' parameters and BN statistics after the step.
absl::Status CompareMethods(const ExperimentConfig& config, const ExperimentConfig& eigen_config,
                            Backend& torch_backend, Backend& eigen_backend) {
  ASSIGN_OR_RETURN(std::unique_ptr<TrainingMethod> torch,
                   CreateTrainingMethod(config, torch_backend));
  ASSIGN_OR_RETURN(std::unique_ptr<TrainingMethod> eigen,
                   CreateTrainingMethod(eigen_config, eigen_backend));
  ASSIGN_OR_RETURN(NamedArrays start, torch->ExportState());
  RETURN_IF_ERROR(eigen->ImportState(start));  // identical start
  for (TrainingMethod* m : {torch.get(), eigen.get()}) {
    ASSIGN_OR_RETURN(ActivationCapture * capture, CaptureOf(m->evaluated_encoder()));
    capture->Enable(true);
  }
  ASSIGN_OR_RETURN(std::unique_ptr<data::BatchLoader> loader, MakeLoader(config));
  std::printf("eigen vs torch (reference), %s (%s), batch %d, tolerance %g\n",
              FLAGS_config.c_str(), config.moco().method().c_str(), config.run().batch_size(),
              FLAGS_tolerance);
  for (int step = 0; step < FLAGS_steps; ++step) {
    ASSIGN_OR_RETURN(std::optional<data::HostBatch> batch, loader->Next());
    if (!batch.has_value()) break;
    StepContext context;
    context.lr = config.optimizer().lr();
    context.key_momentum = config.moco().momentum();
    context.step_seed = static_cast<uint64_t>(step);
    MethodStepResult results[2];
    Backend* backends[2] = {&torch_backend, &eigen_backend};
    TrainingMethod* methods[2] = {torch.get(), eigen.get()};
    for (int b = 0; b < 2; ++b) {
      ASSIGN_OR_RETURN(TensorPtr v1, backends[b]->Upload(batch->views[0]));
      ASSIGN_OR_RETURN(TensorPtr v2, backends[b]->Upload(batch->views[1]));
      ASSIGN_OR_RETURN(results[b], methods[b]->Step(*v1, *v2, context));
    }
    std::printf("step %d: loss torch %.6f eigen %.6f (diff %.2e); top1 torch %.4f eigen %.4f\n",
                step + 1, results[0].loss, results[1].loss,
                std::fabs(results[0].loss - results[1].loss), results[0].top1, results[1].top1);
    RETURN_IF_ERROR(ReportActivations("act", eigen->evaluated_encoder(), torch->evaluated_encoder()));
    ASSIGN_OR_RETURN(NamedArrays eigen_grads, eigen->evaluated_encoder().ExportGradients());
    ASSIGN_OR_RETURN(NamedArrays torch_grads, torch->evaluated_encoder().ExportGradients());
    ASSIGN_OR_RETURN(NamedArrays eigen_state, eigen->ExportState());
    ASSIGN_OR_RETURN(NamedArrays torch_state, torch->ExportState());
    Report("grad", eigen_grads, torch_grads, [](const std::string&) { return true; });
    const NamedArrays eigen_query = Under(eigen_state, "query/");
    const NamedArrays torch_query = Under(torch_state, "query/");
    Report("param", eigen_query, torch_query, IsParameter);
    Report("bn", eigen_query, torch_query, IsBnStat);
    Report("k-bn", Under(eigen_state, "key/"), Under(torch_state, "key/"), IsBnStat);
  }
  return absl::OkStatus();
}

absl::Status Run() {
  ASSIGN_OR_RETURN(ExperimentConfig config,
                   LoadExperimentConfig(ResolveWorkspacePath(FLAGS_config)));
  const bool queue_method = config.moco().method() != "moco_v3";
  if (FLAGS_batch > 0) {
    config.mutable_run()->set_batch_size(FLAGS_batch);
    const int keys = config.moco().symmetric_loss() ? 2 * FLAGS_batch : FLAGS_batch;
    if (queue_method) {
      config.mutable_moco()->set_queue_size(
          std::max(keys, config.moco().queue_size() / keys * keys));
    }
  }
  config.mutable_backend()->set_name("torch");
  config.mutable_backend()->set_device("cpu");
  RETURN_IF_ERROR(ValidateExperimentConfig(config, {}, FLAGS_config));
  ExperimentConfig eigen_config = config;
  eigen_config.mutable_backend()->set_name("eigen");
  ASSIGN_OR_RETURN(std::unique_ptr<Backend> torch_backend, CreateBackendForConfig(config));
  ASSIGN_OR_RETURN(std::unique_ptr<Backend> eigen_backend, CreateBackendForConfig(eigen_config));
  if (!queue_method) return CompareMethods(config, eigen_config, *torch_backend, *eigen_backend);
  ASSIGN_OR_RETURN(std::unique_ptr<MocoQueueState> torch,
                   MocoQueueState::Create(config, *torch_backend));
  ASSIGN_OR_RETURN(std::unique_ptr<MocoQueueState> eigen,
                   MocoQueueState::Create(eigen_config, *eigen_backend));
  ASSIGN_OR_RETURN(NamedArrays start, torch->Export());
  RETURN_IF_ERROR(eigen->Import(start));  // identical start

  ASSIGN_OR_RETURN(std::unique_ptr<data::BatchLoader> loader, MakeLoader(config));
  for (MocoQueueState* state : {torch.get(), eigen.get()}) {
    for (Encoder* encoder : {state->query.get(), state->key.get()}) {
      ASSIGN_OR_RETURN(ActivationCapture * capture, CaptureOf(*encoder));
      capture->Enable(true);
    }
  }
  MocoStep torch_step = torch->MakeStep();
  MocoStep eigen_step = eigen->MakeStep();

  std::printf("eigen vs torch (reference), %s, batch %d, tolerance %g\n", FLAGS_config.c_str(),
              config.run().batch_size(), FLAGS_tolerance);
  for (int step = 0; step < FLAGS_steps; ++step) {
    ASSIGN_OR_RETURN(std::optional<data::HostBatch> batch, loader->Next());
    if (!batch.has_value()) break;
    const float lr = config.optimizer().lr();
    const float m = config.moco().momentum();
    std::vector<MocoStepResult> results;
    for (MocoQueueState* state : {torch.get(), eigen.get()}) {
      ASSIGN_OR_RETURN(TensorPtr v1, state->backend->Upload(batch->views[0]));
      ASSIGN_OR_RETURN(TensorPtr v2, state->backend->Upload(batch->views[1]));
      MocoStep& s = state == torch.get() ? torch_step : eigen_step;
      ASSIGN_OR_RETURN(MocoStepResult r, s.Run(*v1, *v2, lr, m, /*shuffle_seed=*/step));
      results.push_back(std::move(r));
    }
    ASSIGN_OR_RETURN(HostArray torch_logits, results[0].logits->ToHost());
    ASSIGN_OR_RETURN(HostArray eigen_logits, results[1].logits->ToHost());
    const Difference logits = Compare(eigen_logits, torch_logits);
    std::printf("step %d: loss torch %.6f eigen %.6f (diff %.2e); logits max|diff| %.3e rel %.3e\n",
                step + 1, results[0].loss, results[1].loss,
                std::fabs(results[0].loss - results[1].loss), logits.max_abs, logits.max_rel);
    RETURN_IF_ERROR(ReportActivations("act", *eigen->query, *torch->query));
    RETURN_IF_ERROR(ReportActivations("k-act", *eigen->key, *torch->key));
    ASSIGN_OR_RETURN(NamedArrays eigen_grads, eigen->query->ExportGradients());
    ASSIGN_OR_RETURN(NamedArrays torch_grads, torch->query->ExportGradients());
    ASSIGN_OR_RETURN(NamedArrays eigen_query, eigen->query->ExportState());
    ASSIGN_OR_RETURN(NamedArrays torch_query, torch->query->ExportState());
    ASSIGN_OR_RETURN(NamedArrays eigen_key, eigen->key->ExportState());
    ASSIGN_OR_RETURN(NamedArrays torch_key, torch->key->ExportState());
    Report("grad", eigen_grads, torch_grads, [](const std::string&) { return true; });
    Report("param", eigen_query, torch_query, IsParameter);
    Report("bn", eigen_query, torch_query, IsBnStat);
    Report("k-bn", eigen_key, torch_key, IsBnStat);
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace moco

int main(int argc, char** argv) {
  return moco::PipelineMain(argc, argv,
                            "Compare the torch and eigen backends layer by layer on a config.",
                            &moco::Run);
}
