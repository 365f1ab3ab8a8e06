// Fuzz target: an experiment config file through LoadExperimentConfig and the validator
// (paths not checked: random names must not touch the file system beyond the config).
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz/fuzz_input.h"
#include "moco/config/config_io.h"
#include "moco/validation/config_validator.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace moco;
  const std::string path = fuzz::WriteScratchFile(
      "config.pbtxt", std::string(reinterpret_cast<const char*>(data), size));
  auto config = LoadExperimentConfig(path);
  fuzz::Report(config.status());
  if (!config.ok()) return 0;
  ValidationOptions options;
  options.check_paths = false;
  fuzz::Report(ValidateExperimentConfig(*config, options, path));
  ToTextProto(*config);
  return 0;
}
