#include "moco/feature_extraction.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"
#include "data/batch_loader.h"
#include "moco/status_macros.h"

namespace moco {
namespace {

// Visits the split in order as single-view batches: fn(batch).
template <typename Fn>
absl::Status ForEachBatch(std::shared_ptr<const data::Dataset> dataset,
                          std::shared_ptr<const data::Transform> transform,
                          const ExtractionOptions& options, Fn&& fn) {
  data::LoaderOptions loader_options;
  loader_options.batch_size = options.batch_size;
  loader_options.num_workers = options.num_workers;
  loader_options.shuffle = false;
  loader_options.drop_last = false;
  loader_options.num_views = 1;
  if (options.max_images > 0) {
    loader_options.max_batches_per_epoch =
        (std::min(options.max_images, dataset->size()) + options.batch_size - 1) /
        options.batch_size;
  }
  ASSIGN_OR_RETURN(std::unique_ptr<data::BatchLoader> loader,
                   data::BatchLoader::Create(dataset, transform, loader_options));
  RETURN_IF_ERROR(loader->StartEpoch(0));
  while (true) {
    ASSIGN_OR_RETURN(std::optional<data::HostBatch> batch, loader->Next());
    if (!batch.has_value()) break;
    RETURN_IF_ERROR(fn(*batch));
  }
  return absl::OkStatus();
}

// Appends rows of `rows` (n, d) to `out`, capping the total at `limit` rows (0 = no cap).
void AppendRows(const HostArray& rows, const std::vector<int64_t>& labels, int64_t limit,
                LabeledFeatures& out) {
  const int64_t n = rows.shape[0];
  const int64_t d = n == 0 ? 0 : rows.numel() / n;
  int64_t take = n;
  if (limit > 0) take = std::min<int64_t>(n, limit - static_cast<int64_t>(out.labels.size()));
  if (take <= 0) return;
  if (out.features.shape.empty()) out.features.shape = {0, d};
  out.features.data.insert(out.features.data.end(), rows.data.begin(),
                           rows.data.begin() + take * d);
  out.features.shape[0] += take;
  out.labels.insert(out.labels.end(), labels.begin(), labels.begin() + take);
}

}  // namespace

absl::StatusOr<LabeledFeatures> ExtractBackboneFeatures(
    Backend& backend, Encoder& encoder, std::shared_ptr<const data::Dataset> dataset,
    std::shared_ptr<const data::Transform> transform, const ExtractionOptions& options) {
  LabeledFeatures out;
  RETURN_IF_ERROR(ForEachBatch(dataset, transform, options,
                               [&](const data::HostBatch& batch) -> absl::Status {
    ASSIGN_OR_RETURN(TensorPtr images, backend.Upload(batch.views[0]));
    ASSIGN_OR_RETURN(TensorPtr features, encoder.BackboneFeatures(*images));
    ASSIGN_OR_RETURN(HostArray host, features->ToHost());
    AppendRows(host, batch.labels, options.max_images, out);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<LabeledFeatures> ExtractRawPixels(std::shared_ptr<const data::Dataset> dataset,
                                                 std::shared_ptr<const data::Transform> transform,
                                                 const ExtractionOptions& options) {
  LabeledFeatures out;
  RETURN_IF_ERROR(ForEachBatch(dataset, transform, options,
                               [&](const data::HostBatch& batch) -> absl::Status {
    AppendRows(batch.views[0], batch.labels, options.max_images, out);
    return absl::OkStatus();
  }));
  return out;  // (N, C*H*W): AppendRows flattens each image
}

}  // namespace moco
