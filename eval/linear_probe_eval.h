// The //eval:linear_probe pipeline as a library: the MoCo linear-classification protocol for
// each selected encoder (learned, random-init, raw pixels), side by side.
//
//   ASSIGN_OR_RETURN(EvalResults results, RunLinearProbeEval("eval/configs/quickstart.pbtxt"));
//
// The backbone is frozen and in eval mode (BN running statistics): features come from
// Encoder::BackboneFeatures, which records nothing for backward, and only the linear layer
// (eval/linear_classifier.h) is trained. As in the official protocol, the backbone's exported
// state is compared bitwise before and after training; a difference is an error.
#ifndef EVAL_LINEAR_PROBE_EVAL_H_
#define EVAL_LINEAR_PROBE_EVAL_H_

#include <string>

#include "absl/status/statusor.h"
#include "eval/eval_config.pb.h"
#include "eval/linear_classifier.h"
#include "moco/config/config.pb.h"
#include "moco/core/host_array.h"

namespace moco {
namespace eval {

// Loads and validates the config, reads the checkpoint, trains and tests a linear classifier
// per encoder (linear.mode AUGMENTED: RandomResizedCrop + flip views through the frozen encoder
// every epoch; FEATURES: eval-view features extracted once), shows progress, writes
// "linear_probe_results.pbtxt" into the results folder and returns what it wrote.
// dist_timeout_s: see PrepareEval (eval/eval_setup.h); used only under WORLD_SIZE > 1.
absl::StatusOr<EvalResults> RunLinearProbeEval(const std::string& config_path, int dist_timeout_s = 300);

// The classifier's optimizer settings from the config (milestones: EffectiveMilestones).
SgdOptions SgdOptionsFromConfig(const LinearConfig& linear);

// The protocol's training augmentation for `data`: RandomResizedCrop(image_size, scale
// 0.08-1, ratio 3/4-4/3) + horizontal flip p = 0.5 + the config's normalization, nothing else.
DataConfig ProtocolTrainAugmentation(const DataConfig& data);

// Standardizes every column of `train` (N, D) to mean 0 and variance 1 ((x - mean) /
// sqrt(var + 1e-5), statistics of `train` in double) and applies the same map to `test` (M, D).
void StandardizeFeatures(HostArray& train, HostArray& test);

}  // namespace eval
}  // namespace moco

#endif  // EVAL_LINEAR_PROBE_EVAL_H_
