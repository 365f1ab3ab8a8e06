#include "backends/eigen/eigen_rank_average.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "backends/eigen/eigen_tensor.h"
#include "moco/core/status_macros.h"

namespace moco {
namespace eigen_backend {
namespace {

// Averages the float spans [begin_i, begin_i + size_i) over the ranks through one bucket.
absl::Status AverageSpans(const std::vector<std::pair<float*, int64_t>>& spans,
                          Communicator& communicator) {
  int64_t total = 0;
  for (const auto& [data, size] : spans) total += size;
  if (total == 0) return absl::OkStatus();
  std::shared_ptr<EigenTensor> bucket = MakeEigenTensor(HostArray({total}));
  float* out = bucket->mutable_array().mutable_data().data();
  for (const auto& [data, size] : spans) out = std::copy_n(data, size, out);
  RETURN_IF_ERROR(communicator.AllReduceAverage(*bucket));
  const float* in = bucket->array().data().data();
  for (const auto& [data, size] : spans) {
    std::copy_n(in, size, data);
    in += size;
  }
  return absl::OkStatus();
}

bool IsRunningStatistic(const std::string& name) {
  return absl::EndsWith(name, "running_mean") || absl::EndsWith(name, "running_var");
}

}  // namespace

absl::Status AverageEigenEncoderAcrossRanks(EigenEncoder& encoder, RankAveraged what,
                                            Communicator& communicator) {
  if (communicator.world_size() == 1) return absl::OkStatus();
  std::vector<std::pair<float*, int64_t>> spans;
  if (what == RankAveraged::kGradients) {
    for (StateRef<float>& p : encoder.Parameters()) spans.emplace_back(p.grad, p.size);
    return AverageSpans(spans, communicator);
  }
  ASSIGN_OR_RETURN(NamedArrays state, encoder.ExportState());
  for (auto& [name, array] : state) {
    if (IsRunningStatistic(name)) {
      spans.emplace_back(array.mutable_data().data(), array.numel());
    }
  }
  if (spans.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(AverageSpans(spans, communicator));
  return encoder.ImportState(state);
}

}  // namespace eigen_backend
}  // namespace moco
