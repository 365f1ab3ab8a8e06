// Loads and validates an experiment config and prints it with its augmentation preset resolved:
// the parameters a run with this file would actually use.
//
//   bazel run //tools:check_config -- --config=configs/quickstart.pbtxt
#include <iostream>

#include "absl/status/status.h"
#include "gflags/gflags.h"
#include "moco/config/augmentation_presets.h"
#include "moco/config/config_io.h"
#include "moco/validation/config_validator.h"
#include "moco/run/pipeline_main.h"
#include "moco/core/status_macros.h"

DEFINE_string(config, "configs/quickstart.pbtxt", "Experiment config (text proto).");
DEFINE_bool(check_paths, true, "Check that the dataset paths exist on this machine.");

namespace moco {
namespace {

absl::Status Run() {
  ASSIGN_OR_RETURN(ExperimentConfig config,
                   LoadExperimentConfig(ResolveWorkspacePath(FLAGS_config)));
  ValidationOptions options;
  options.check_paths = FLAGS_check_paths;
  RETURN_IF_ERROR(ValidateExperimentConfig(config, options, FLAGS_config));
  *config.mutable_data()->mutable_augmentation() =
      ResolveAugmentation(config.data().augmentation());
  std::cout << "# " << FLAGS_config << ": valid. Augmentation preset resolved (unset scalars take the defaults in moco/config.proto):\n";
  std::cout << ToTextProto(config);
  return absl::OkStatus();
}

}  // namespace
}  // namespace moco

int main(int argc, char** argv) {
  return moco::PipelineMain(argc, argv,
                            "Validate an experiment config and print its effective values.",
                            &moco::Run);
}
