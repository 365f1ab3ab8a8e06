// Up-front validation of an ExperimentConfig: every broken rule at once, each naming its field.
//
// Backend and method names, and each backend's device strings, come from the registries of the
// binary the validator is linked into (moco/core/backend_registry.h, method_registry.h).
//
//   absl::Status s = ValidateExperimentConfig(config, ValidationOptions{});
//   // InvalidArgument: "3 config errors:\n  moco.queue_size (65537) must be a multiple of ..."
#ifndef MOCO_VALIDATION_CONFIG_VALIDATOR_H_
#define MOCO_VALIDATION_CONFIG_VALIDATOR_H_

#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "moco/config/config.pb.h"
#include "moco/core/cpu_features.h"
#include "moco/config/config_errors.h"

namespace moco {

struct ValidationOptions {
  // Check that data.train_path / data.test_path exist (off for configs meant for other machines).
  bool check_paths = true;
  // Processes of a data-parallel run (WORLD_SIZE; 1 = one process). run.batch_size is the
  // global batch: it must divide by the world size, and moco.bn_splits must divide each
  // process's share of it.
  int world_size = 1;
};

// Every rule the config breaks, in field order; empty when it is valid.
std::vector<ConfigError> FindConfigErrors(const ExperimentConfig& config,
                                          const ValidationOptions& options = {});

// OK, or InvalidArgument listing every error (one per line) with `source` (e.g. the file) first.
absl::Status ValidateExperimentConfig(const ExperimentConfig& config,
                                      const ValidationOptions& options = {},
                                      const std::string& source = "config");

// The rules for a DataConfig (dataset, paths, loader, resolved augmentation), reported under
// "data.". `in_channels` is the model's channel count, which normalize_mean/std must match;
// 0 when it is not known yet (then 1 or 3 values are accepted).
void CheckDataConfig(const DataConfig& data, int in_channels, bool check_paths,
                     ConfigErrorList& errors);

// The rules for a BackendConfig, reported under "backend.": a registered backend, and a device
// string that backend accepts.
// backend.name, backend.device, and backend.precision / channels_last against what the named
// backend offers (BackendCapabilities) and, for BF16 on a CPU, against `cpu_flags` (this
// machine's /proc/cpuinfo by default).
void CheckBackendConfig(const BackendConfig& backend, ConfigErrorList& errors,
                        const std::set<std::string>& cpu_flags = CpuFlags());

}  // namespace moco

#endif  // MOCO_VALIDATION_CONFIG_VALIDATOR_H_
