// Fuzz target: an eval config file through LoadEvalConfig, the validator and the values it
// implies (paths not checked).
#include <cstddef>
#include <cstdint>
#include <string>

#include "eval/eval_config_io.h"
#include "eval/eval_config_validator.h"
#include "fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace moco;
  const std::string path = fuzz::WriteScratchFile(
      "eval.pbtxt", std::string(reinterpret_cast<const char*>(data), size));
  auto config = eval::LoadEvalConfig(path);
  fuzz::Report(config.status());
  if (!config.ok()) return 0;
  eval::EvalValidationOptions options;
  options.check_paths = false;
  const absl::Status valid = eval::ValidateEvalConfig(*config, options, path);
  fuzz::Report(valid);
  if (!valid.ok()) return 0;
  eval::EffectiveMilestones(config->linear());
  eval::SelectedEncoders(*config);
  eval::ResultsDir(*config);
  return 0;
}
