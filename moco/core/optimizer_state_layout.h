// The NamedArrays layout of per-parameter optimizer state, shared by every backend's
// Optimizer::ExportState / ImportState (names in moco/core/optimizer.h).
//
// Every parameter has the same list of slots; the entry of parameter P for slot S is named
// P + S.suffix and has P's shape, or shape {} (one value) for a scalar slot. Examples: SGD and
// LARS have one slot, suffix "" (the momentum buffer is named like its parameter); AdamW has
// ".exp_avg", ".exp_avg_sq" and the scalar ".step".
//
//   OptimizerStateLayout layout(names, shapes, {{".exp_avg"}, {".exp_avg_sq"}, {".step", true}});
//   ASSIGN_OR_RETURN(auto matched, layout.Match(state));
//   if (matched[i][0] != nullptr) { ... parameter i has state; all its slots are non-null ... }
#ifndef MOCO_CORE_OPTIMIZER_STATE_LAYOUT_H_
#define MOCO_CORE_OPTIMIZER_STATE_LAYOUT_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "moco/core/host_array.h"

namespace moco {

struct OptimizerSlot {
  std::string suffix;   // appended to the parameter name
  bool scalar = false;  // shape {} instead of the parameter's shape
};

class OptimizerStateLayout {
 public:
  // CHECK-fails if names and shapes differ in length or two entry names coincide (a
  // programming error: the names come from the encoder and the optimizer's own slot list).
  OptimizerStateLayout(std::vector<std::string> param_names,
                       std::vector<std::vector<int64_t>> param_shapes,
                       std::vector<OptimizerSlot> slots);

  size_t num_params() const { return names_.size(); }
  const std::string& param_name(size_t param) const { return names_[param]; }
  const std::vector<int64_t>& param_shape(size_t param) const { return shapes_[param]; }
  std::string EntryName(size_t param, size_t slot) const;
  std::vector<int64_t> EntryShape(size_t param, size_t slot) const;

  // Matches `state` entry by entry: result[param][slot] points into `state`. A parameter has
  // either all its slots (it continues from them) or none (all null: it starts afresh).
  // InvalidArgument naming the entry for a name this layout does not have or a wrong shape, and
  // naming the missing entry when a parameter has some of its slots but not all.
  absl::StatusOr<std::vector<std::vector<const HostArray*>>> Match(const NamedArrays& state) const;

 private:
  std::vector<std::string> names_;
  std::vector<std::vector<int64_t>> shapes_;
  std::vector<OptimizerSlot> slots_;
  std::map<std::string, std::pair<size_t, size_t>> index_;  // entry name -> (param, slot)
};

// The step count held in a scalar slot (a float holding an exact integer, as torch.optim keeps
// it): InvalidArgument naming `entry` unless it is an integer in [1, kMaxExactStepCount].
absl::StatusOr<int64_t> StepCountFromArray(const HostArray& array, const std::string& entry);

// Step counts stay exact in float32 up to 2^24.
inline constexpr int64_t kMaxExactStepCount = int64_t{1} << 24;

}  // namespace moco

#endif  // MOCO_CORE_OPTIMIZER_STATE_LAYOUT_H_
