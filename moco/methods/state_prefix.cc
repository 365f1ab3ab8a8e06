#include "moco/methods/state_prefix.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace moco {

NamedArrays SelectPrefix(const NamedArrays& arrays, const std::string& prefix) {
  NamedArrays out;
  for (const auto& [name, array] : arrays) {
    if (absl::StartsWith(name, prefix)) out[name.substr(prefix.size())] = array;
  }
  return out;
}

void AddWithPrefix(const NamedArrays& from, const std::string& prefix, NamedArrays& to) {
  for (const auto& [name, array] : from) to[prefix + name] = array;
}

absl::Status AnnotateStatus(const absl::Status& status, const std::string& what) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(what, ": ", status.message()));
}

}  // namespace moco
