// Loading evaluation configs (eval/eval_config.proto) and the values they imply.
//
//   ASSIGN_OR_RETURN(EvalConfig config, LoadEvalConfig("eval/configs/quickstart_knn.pbtxt"));
//   RETURN_IF_ERROR(ValidateEvalConfig(config, {}, path));          // eval_config_validator.h
//   std::vector<int> milestones = EffectiveMilestones(config.linear());
#ifndef EVAL_EVAL_CONFIG_IO_H_
#define EVAL_EVAL_CONFIG_IO_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "eval/eval_config.pb.h"

namespace moco {
namespace eval {

// Parses a text-format EvalConfig (moco::ParseTextProtoFile: NotFound for a missing file,
// InvalidArgument listing "path:line:column: problem" for syntax errors). Not validated.
absl::StatusOr<EvalConfig> LoadEvalConfig(const std::string& path);

// linear.milestones, or the protocol's {60, 80} when the field is empty.
std::vector<int> EffectiveMilestones(const LinearConfig& linear);

// The encoders `config.encoders` selects, in report order (LEARNED, RANDOM_INIT, RAW_PIXELS).
std::vector<EvalConfig::Encoders> SelectedEncoders(const EvalConfig& config);

// The folder results files go to: results_dir, or the checkpoint's folder ("." if none).
std::string ResultsDir(const EvalConfig& config);

}  // namespace eval
}  // namespace moco

#endif  // EVAL_EVAL_CONFIG_IO_H_
