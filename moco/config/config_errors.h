// Config validation errors: a field path and a sentence, collected so that every broken rule
// is reported at once. Shared by the experiment and evaluation config validators.
//
//   ConfigErrorList errors;
//   errors.Require(k > 0, "knn.k", k, "must be > 0");   // "knn.k (0) must be > 0"
//   return ConfigErrorsToStatus(errors.Take(), "eval.pbtxt");
#ifndef MOCO_CONFIG_CONFIG_ERRORS_H_
#define MOCO_CONFIG_CONFIG_ERRORS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace moco {

struct ConfigError {
  std::string field;    // e.g. "moco.queue_size"
  std::string message;  // the whole sentence, starting with the field path
};

class ConfigErrorList {
 public:
  // Records "field (value) rule" when `ok` is false.
  template <typename T>
  void Require(bool ok, const std::string& field, const T& value, const std::string& rule) {
    if (!ok) errors_.push_back({field, absl::StrCat(field, " (", value, ") ", rule)});
  }
  void Add(const std::string& field, const std::string& message) {
    errors_.push_back({field, message});
  }
  std::vector<ConfigError> Take() { return std::move(errors_); }

 private:
  std::vector<ConfigError> errors_;
};

// OK when `errors` is empty; otherwise InvalidArgument "source: N config errors:" followed by
// one message per line.
absl::Status ConfigErrorsToStatus(const std::vector<ConfigError>& errors,
                                  const std::string& source);

}  // namespace moco

#endif  // MOCO_CONFIG_CONFIG_ERRORS_H_
