// Checkpoint arrays of a training method are its parts' NamedArrays under a prefix per part
// ("query/", "key/", "queue/", "optimizer/"). Shared by every method's Export/Import.
#ifndef MOCO_METHODS_STATE_PREFIX_H_
#define MOCO_METHODS_STATE_PREFIX_H_

#include <string>

#include "absl/status/status.h"
#include "moco/core/host_array.h"

namespace moco {

// Entries of `arrays` whose name starts with `prefix`, with the prefix removed.
NamedArrays SelectPrefix(const NamedArrays& arrays, const std::string& prefix);
// Adds every entry of `from` to `to` as prefix + name.
void AddWithPrefix(const NamedArrays& from, const std::string& prefix, NamedArrays& to);
// `status` with "what: " in front of its message (OK stays OK).
absl::Status AnnotateStatus(const absl::Status& status, const std::string& what);

}  // namespace moco

#endif  // MOCO_METHODS_STATE_PREFIX_H_
