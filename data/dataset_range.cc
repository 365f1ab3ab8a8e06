#include "data/dataset_range.h"

#include <algorithm>
#include <utility>

namespace moco {
namespace data {

DatasetRange::DatasetRange(std::shared_ptr<const Dataset> base, int64_t begin, int64_t end)
    : base_(std::move(base)) {
  const int64_t n = base_->size();
  begin_ = std::clamp<int64_t>(begin, 0, n);
  end_ = std::clamp<int64_t>(end, begin_, n);
}

}  // namespace data
}  // namespace moco
