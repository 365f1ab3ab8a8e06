// Converts weights between the project's checkpoint and the PyTorch formats, in every
// direction (moco/interop/weights_file.h; the input format is detected from its magic bytes):
//
//   bazel run //tools:convert -- --in=runs/x/checkpoint.ckpt --to=torchvision --out=r18.pth
//   bazel run //tools:convert -- --in=moco_v2_800ep_pretrain.pth.tar --to=native --out=m.ckpt
//
// The weights must fit the architecture: a native input's own config, else --config's model,
// else the one the names and shapes imply (moco/interop InferModelConfig). The first
// mismatching name with both shapes is reported and nothing is written. A file without a
// projection head (torchvision, timm, detectron2) written as native or moco gets a freshly
// initialized head (seed run.seed); a missing key encoder becomes a copy of the query encoder.
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gflags/gflags.h"
#include "glog/logging.h"
#include "moco/config/config_io.h"
#include "moco/core/backend_registry.h"
#include "moco/core/model_spec.h"
#include "moco/core/optimizer_state_layout.h"
#include "moco/core/status_macros.h"
#include "moco/interop/encoder_init.h"
#include "moco/interop/weights_file.h"
#include "moco/run/pipeline_main.h"

DEFINE_string(in, "",
              "Input file: native checkpoint, official MoCo (v1/v2 or v3), torchvision, timm (a "
              "ViT backbone) or detectron2.");
DEFINE_string(to, "",
              "Output format: torchvision, moco, moco_v3, detectron2 (ResNets), timm (ViTs) or "
              "native.");
DEFINE_string(out, "", "Output file (written atomically).");
DEFINE_string(config, "",
              "Experiment config (text proto) whose model the weights must fit; stored in native "
              "outputs. Default: the native input's own config, else inferred from the weights.");

DEFINE_bool(with_optimizer, true,
            "--to=moco: include the SGD state when the input has one. torch 1.13's "
            "torch.load(weights_only=True) refuses files with it (Python floats in param_groups).");

namespace moco {
namespace {

// The optimizer arrays of `w` must be `algorithm`'s slots (moco/core/optimizer_state_layout.h:
// SGD and LARS one buffer named as its parameter, AdamW ".exp_avg", ".exp_avg_sq", ".step") of
// query parameters with their shapes; InvalidArgument naming the first entry that is not.
absl::Status CheckOptimizerState(const interop::MocoWeights& w,
                                 OptimizerConfig::Algorithm algorithm, const std::string& label) {
  if (w.momentum.empty()) return absl::OkStatus();
  std::vector<std::string> names;
  std::vector<std::vector<int64_t>> shapes;
  for (const auto& [name, a] : w.query) {
    names.push_back(name);
    shapes.push_back(a.shape());
  }
  std::vector<OptimizerSlot> slots = {{""}};
  if (algorithm == OptimizerConfig::ADAMW) slots = {{".exp_avg"}, {".exp_avg_sq"}, {".step", true}};
  const OptimizerStateLayout layout(std::move(names), std::move(shapes), std::move(slots));
  absl::StatusOr<std::vector<std::vector<const HostArray*>>> matched = layout.Match(w.momentum);
  if (!matched.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        label, ": optimizer state (", OptimizerConfig::Algorithm_Name(algorithm),
        ") does not fit the parameters: ", matched.status().message()));
  }
  return absl::OkStatus();
}

absl::Status Run() {
  if (FLAGS_in.empty() || FLAGS_to.empty() || FLAGS_out.empty()) {
    return absl::InvalidArgumentError("--in, --to and --out are required");
  }
  ASSIGN_OR_RETURN(interop::Format to, interop::ParseFormat(FLAGS_to));
  const std::string in = ResolveWorkspacePath(FLAGS_in);
  ASSIGN_OR_RETURN(interop::WeightsFile file, interop::ReadWeightsFile(in));
  interop::MocoWeights& w = file.weights;

  ExperimentConfig config;
  std::string source;
  if (!FLAGS_config.empty()) {
    ASSIGN_OR_RETURN(config, LoadExperimentConfig(ResolveWorkspacePath(FLAGS_config)));
    source = FLAGS_config;
  } else if (file.config) {
    config = *file.config;
    source = "the checkpoint's config";
  } else {
    ASSIGN_OR_RETURN(*config.mutable_model(), interop::InferModelConfig(w.query, w.arch));
    source = "inferred from the weights";
    // What the file says about the rest of the run, so that a native output is consistent.
    if (w.queue && w.queue->shape().size() == 2) {
      config.mutable_moco()->set_queue_size(static_cast<int32_t>(w.queue->shape()[0]));
    }
    if (file.format == interop::Format::kMocoV3) config.mutable_moco()->set_method("moco_v3");
    if (file.format == interop::Format::kMoco) {
      config.mutable_optimizer()->set_lr(static_cast<float>(w.lr));
      config.mutable_optimizer()->set_momentum(static_cast<float>(w.sgd_momentum));
      config.mutable_optimizer()->set_weight_decay(static_cast<float>(w.weight_decay));
    }
  }
  const ModelConfig& m = config.model();
  LOG(INFO) << in << ": " << interop::FormatName(file.format) << ", architecture ("
            << source << ") " << m.arch() << " width " << m.width_multiplier()
            << (m.cifar_stem() ? " cifar_stem" : "") << " in_channels " << m.in_channels()
            << " feature_dim " << m.feature_dim() << (m.mlp_head() ? " mlp_head" : "");

  ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend, CreateBackend("eigen", BackendOptions{}));
  ASSIGN_OR_RETURN(NamedArrays expected, interop::ArchitectureState(*backend, m));
  const std::string label = absl::StrCat(in, " does not fit the architecture (", source, ")");
  RETURN_IF_ERROR(interop::MatchArchitecture(expected, w.query, /*allow_missing_head=*/true,
                                             label + ", query encoder"));
  if (!w.key.empty()) {
    NamedArrays expected_key = expected;  // key encoders have no predictor (MoCo v3)
    for (auto it = expected_key.begin(); it != expected_key.end();) {
      it = absl::StartsWith(it->first, "predictor.") ? expected_key.erase(it) : std::next(it);
    }
    RETURN_IF_ERROR(
        interop::MatchArchitecture(expected_key, w.key, true, label + ", key encoder"));
  }
  RETURN_IF_ERROR(CheckOptimizerState(w, config.optimizer().algorithm(), label));
  if (w.queue && (w.queue->shape().size() != 2 || w.queue->shape()[1] != m.feature_dim())) {
    return absl::InvalidArgumentError(absl::StrCat(label, ": the queue has shape ",
                                                   ShapeToString(w.queue->shape()),
                                                   ", the architecture needs (K, ",
                                                   m.feature_dim(), ")"));
  }
  // The projector's module: "fc" on ResNets, "head" on ViTs (moco/core/model_spec.h).
  ASSIGN_OR_RETURN(const EncoderSpec spec, EncoderSpecFromConfig(m));
  const std::string projector = spec.projector.name + ".";
  bool head = false;
  for (const auto& [name, a] : w.query) head = head || absl::StartsWith(name, projector);
  if (!head && (to == interop::Format::kNative || to == interop::Format::kMoco ||
                to == interop::Format::kMocoV3)) {
    // Needs a full encoder: fresh heads of the architecture (v3: projector and predictor).
    ASSIGN_OR_RETURN(NamedArrays fresh,
                     interop::ArchitectureState(*backend, m, config.run().seed()));
    for (const auto& [name, a] : fresh) {
      if (absl::StartsWith(name, projector) || absl::StartsWith(name, "predictor.")) {
        w.query[name] = a;
      }
    }
    if (!w.key.empty()) {
      for (const auto& [name, a] : fresh) {
        if (absl::StartsWith(name, projector)) w.key[name] = a;
      }
    }
    LOG(WARNING) << in << " has no projection head: writing a freshly initialized one";
  }
  const std::string out = FLAGS_out;
  RETURN_IF_ERROR(interop::WriteWeightsFile(out, to, w, config, FLAGS_with_optimizer));
  std::cout << "wrote " << out << " (" << interop::FormatName(to) << ", "
            << (to == interop::Format::kTorchvision || to == interop::Format::kDetectron2 ||
                        to == interop::Format::kTimm
                    ? "backbone"
                    : "query + key encoders")
            << ") from " << in << " (" << interop::FormatName(file.format) << ")\n";
  return absl::OkStatus();
}

}  // namespace
}  // namespace moco

int main(int argc, char** argv) {
  return moco::PipelineMain(argc, argv,
                            "Convert weights: native <-> official MoCo / torchvision / detectron2.",
                            &moco::Run);
}
