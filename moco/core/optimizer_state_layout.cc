#include "moco/core/optimizer_state_layout.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace moco {

OptimizerStateLayout::OptimizerStateLayout(std::vector<std::string> param_names,
                                           std::vector<std::vector<int64_t>> param_shapes,
                                           std::vector<OptimizerSlot> slots)
    : names_(std::move(param_names)), shapes_(std::move(param_shapes)), slots_(std::move(slots)) {
  CHECK_EQ(names_.size(), shapes_.size());
  for (size_t p = 0; p < names_.size(); ++p) {
    for (size_t s = 0; s < slots_.size(); ++s) {
      CHECK(index_.emplace(EntryName(p, s), std::make_pair(p, s)).second)
          << "optimizer state entry '" << EntryName(p, s) << "' is named twice";
    }
  }
}

std::string OptimizerStateLayout::EntryName(size_t param, size_t slot) const {
  return names_[param] + slots_[slot].suffix;
}

std::vector<int64_t> OptimizerStateLayout::EntryShape(size_t param, size_t slot) const {
  return slots_[slot].scalar ? std::vector<int64_t>{} : shapes_[param];
}

absl::StatusOr<std::vector<std::vector<const HostArray*>>> OptimizerStateLayout::Match(
    const NamedArrays& state) const {
  std::vector<std::vector<const HostArray*>> matched(
      names_.size(), std::vector<const HostArray*>(slots_.size(), nullptr));
  for (const auto& [name, array] : state) {
    auto it = index_.find(name);
    if (it == index_.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "optimizer state has an entry '", name, "' that this optimizer and encoder lack"));
    }
    const auto [p, s] = it->second;
    const std::vector<int64_t> shape = EntryShape(p, s);
    if (array.shape() != shape) {
      return absl::InvalidArgumentError(
          absl::StrCat("optimizer state entry '", name, "' has shape ",
                       ShapeToString(array.shape()), "; expected ", ShapeToString(shape)));
    }
    matched[p][s] = &array;
  }
  for (size_t p = 0; p < names_.size(); ++p) {
    size_t present = 0;
    for (const HostArray* a : matched[p]) present += a != nullptr;
    if (present == 0 || present == slots_.size()) continue;
    for (size_t s = 0; s < slots_.size(); ++s) {
      if (matched[p][s] == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat("optimizer state for parameter '", names_[p], "' lacks the entry '",
                         EntryName(p, s), "' (a parameter has all its entries or none)"));
      }
    }
  }
  return matched;
}

absl::StatusOr<int64_t> StepCountFromArray(const HostArray& array, const std::string& entry) {
  const float v = array.numel() == 1 ? array.data()[0] : -1.0f;
  if (!(v >= 1 && v <= static_cast<float>(kMaxExactStepCount) && std::floor(v) == v)) {
    return absl::InvalidArgumentError(
        absl::StrCat("optimizer state entry '", entry, "' (", array.numel() == 1 ? v : -1.0f,
                     ") must be one integer step count in [1, 2^24]"));
  }
  return static_cast<int64_t>(v);
}

}  // namespace moco
