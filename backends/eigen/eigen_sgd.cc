#include "backends/eigen/eigen_sgd.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "backends/eigen/eigen_tensor.h"
#include "backends/eigen/sgd.h"

namespace moco {
namespace eigen_backend {

EigenSgd::EigenSgd(EigenEncoder& encoder, const OptimizerConfig& config)
    : encoder_(encoder), momentum_(config.momentum()), weight_decay_(config.weight_decay()) {
  for (const StateRef<float>& p : encoder_.Parameters()) {
    names_.push_back(p.name);
    shapes_.push_back(p.shape);
  }
  buffers_.resize(names_.size());
}

absl::Status EigenSgd::Step(float lr) {
  std::vector<StateRef<float>> params = encoder_.Parameters();
  if (params.size() != names_.size()) {
    return absl::InternalError("EigenSgd: the encoder's parameter list changed");
  }
  for (size_t i = 0; i < params.size(); ++i) {
    std::vector<float>& buf = buffers_[i];
    const bool first = buf.empty();
    if (first && momentum_ != 0) buf.resize(static_cast<size_t>(params[i].size));
    SgdUpdate(params[i].value, params[i].grad, momentum_ != 0 ? buf.data() : nullptr,
              params[i].size, first, lr, momentum_, weight_decay_);
  }
  return absl::OkStatus();
}

NamedArrays EigenSgd::ExportState() const {
  NamedArrays state;
  for (size_t i = 0; i < names_.size(); ++i) {
    if (!buffers_[i].empty()) state[names_[i]] = HostArray(shapes_[i], buffers_[i]);
  }
  return state;
}

absl::Status EigenSgd::ImportState(const NamedArrays& state) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < names_.size(); ++i) index[names_[i]] = i;
  std::vector<std::vector<float>> buffers(names_.size());
  for (const auto& [name, array] : state) {
    auto it = index.find(name);
    if (it == index.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "optimizer state has a momentum buffer '", name, "' for a parameter this encoder lacks"));
    }
    if (array.shape() != shapes_[it->second]) {
      return absl::InvalidArgumentError(
          absl::StrCat("optimizer momentum buffer '", name, "' has shape ",
                       ShapeString(array.shape()), "; the parameter's is ",
                       ShapeString(shapes_[it->second])));
    }
    buffers[it->second] = array.data();
  }
  buffers_ = std::move(buffers);
  return absl::OkStatus();
}

}  // namespace eigen_backend
}  // namespace moco
