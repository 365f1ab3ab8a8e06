// Up-front validation of an EvalConfig: every broken rule at once, each naming its field path
// (the same shape as moco/validation/config_validator.h), e.g.
//   eval/configs/x.pbtxt: 2 config errors:
//     knn.k (0) must be > 0
//     linear.milestones (60, 80) must each be in [1, linear.epochs = 10); empty means 60, 80
//
//   RETURN_IF_ERROR(ValidateEvalConfig(config, {}, path));
// Rules that need the checkpoint (architecture, channel count) are checked by the pipelines
// once it is read.
#ifndef EVAL_EVAL_CONFIG_VALIDATOR_H_
#define EVAL_EVAL_CONFIG_VALIDATOR_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "eval/eval_config.pb.h"
#include "moco/validation/config_validator.h"

namespace moco {
namespace eval {

struct EvalValidationOptions {
  // Check that checkpoint, data.train_path and data.test_path exist.
  bool check_paths = true;
};

// Every rule `config` breaks, in field order; empty when it is valid.
std::vector<ConfigError> FindEvalConfigErrors(const EvalConfig& config,
                                              const EvalValidationOptions& options = {});

// OK, or InvalidArgument "<source>: N config errors:" and one error per line.
absl::Status ValidateEvalConfig(const EvalConfig& config,
                                const EvalValidationOptions& options = {},
                                const std::string& source = "eval config");

}  // namespace eval
}  // namespace moco

#endif  // EVAL_EVAL_CONFIG_VALIDATOR_H_
