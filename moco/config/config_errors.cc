#include "moco/config/config_errors.h"

namespace moco {

absl::Status ConfigErrorsToStatus(const std::vector<ConfigError>& errors,
                                  const std::string& source) {
  if (errors.empty()) return absl::OkStatus();
  std::string message = absl::StrCat(source, ": ", errors.size(), " config error",
                                     errors.size() == 1 ? "" : "s", ":");
  for (const ConfigError& error : errors) absl::StrAppend(&message, "\n  ", error.message);
  return absl::InvalidArgumentError(message);
}

}  // namespace moco
