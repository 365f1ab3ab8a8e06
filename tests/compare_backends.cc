// CPU reference debugging: runs MoCo steps of a real config on the torch and eigen backends
// from the same weights, queue and batches, and prints, layer by layer in network order, how far
// apart they are after each step:
//   - the loss and logits;
//   - every layer's output in the step's query forward ("act") and shuffled key forward
//     ("k-act"), in execution order (Encoder::SetActivationCapture; with the symmetric loss,
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
    std::smatch m;
    if (std::regex_search(n, m, layer)) return std::stoi(m[1]) * 1000 + std::stoi(m[2]) * 10;
    if (n.rfind("fc", 0) == 0) return 100000;
    return 0;  // stem: conv1, bn1
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

// Report over layer outputs, in the reference's execution order.
std::string ReportActivations(const std::string& what, const Encoder& tested,
                              const Encoder& reference) {
  std::vector<std::string> order;
  NamedArrays tested_arrays, reference_arrays;
  for (const auto& [name, array] : reference.CapturedActivations()) {
    order.push_back(name);
    reference_arrays[name] = array;
  }
  for (const auto& [name, array] : tested.CapturedActivations()) tested_arrays[name] = array;
  return Report(what, order, tested_arrays, reference_arrays);
}

bool IsBnStat(const std::string& n) {
  return n.find("running_mean") != std::string::npos || n.find("running_var") != std::string::npos;
}
bool IsParameter(const std::string& n) {
  return !IsBnStat(n) && n.find("num_batches_tracked") == std::string::npos;
}

absl::Status Run() {
  ASSIGN_OR_RETURN(ExperimentConfig config,
                   LoadExperimentConfig(ResolveWorkspacePath(FLAGS_config)));
  if (FLAGS_batch > 0) {
    config.mutable_run()->set_batch_size(FLAGS_batch);
    const int keys = config.moco().symmetric_loss() ? 2 * FLAGS_batch : FLAGS_batch;
    config.mutable_moco()->set_queue_size(std::max(keys, config.moco().queue_size() / keys * keys));
  }
  config.mutable_backend()->set_name("torch");
  config.mutable_backend()->set_device("cpu");
  RETURN_IF_ERROR(ValidateExperimentConfig(config, {}, FLAGS_config));
  ExperimentConfig eigen_config = config;
  eigen_config.mutable_backend()->set_name("eigen");
  ASSIGN_OR_RETURN(std::unique_ptr<Backend> torch_backend, CreateBackendForConfig(config));
  ASSIGN_OR_RETURN(std::unique_ptr<Backend> eigen_backend, CreateBackendForConfig(eigen_config));
  ASSIGN_OR_RETURN(std::unique_ptr<MocoQueueState> torch,
                   MocoQueueState::Create(config, *torch_backend));
  ASSIGN_OR_RETURN(std::unique_ptr<MocoQueueState> eigen,
                   MocoQueueState::Create(eigen_config, *eigen_backend));
  ASSIGN_OR_RETURN(NamedArrays start, torch->Export());
  RETURN_IF_ERROR(eigen->Import(start));  // identical start

  ASSIGN_OR_RETURN(auto dataset, data::OpenDataset(config.data(), data::Split::kTrain));
  ASSIGN_OR_RETURN(auto transform,
                   data::MakeTrainTransform(config.data(), config.model().in_channels()));
  data::LoaderOptions options;
  options.batch_size = config.run().batch_size();
  options.num_workers = config.data().num_workers();
  options.seed = config.run().seed();
  ASSIGN_OR_RETURN(auto loader, data::BatchLoader::Create(dataset, transform, options));
  RETURN_IF_ERROR(loader->StartEpoch(0));
  for (MocoQueueState* state : {torch.get(), eigen.get()}) {
    state->query->SetActivationCapture(true);
    state->key->SetActivationCapture(true);
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
    ReportActivations("act", *eigen->query, *torch->query);
    ReportActivations("k-act", *eigen->key, *torch->key);
    Report("grad", eigen->query->ExportGradients(), torch->query->ExportGradients(),
           [](const std::string&) { return true; });
    Report("param", eigen->query->ExportState(), torch->query->ExportState(), IsParameter);
    Report("bn", eigen->query->ExportState(), torch->query->ExportState(), IsBnStat);
    Report("k-bn", eigen->key->ExportState(), torch->key->ExportState(), IsBnStat);
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
