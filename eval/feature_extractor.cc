#include "eval/feature_extractor.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "moco/core/status_macros.h"

namespace moco {
namespace eval {
namespace {

class EncoderSource final : public FeatureSource {
 public:
  EncoderSource(Backend& backend, Encoder& encoder) : backend_(backend), encoder_(encoder) {}
  absl::StatusOr<HostArray> Features(const HostArray& images) override {
    ASSIGN_OR_RETURN(TensorPtr uploaded, backend_.Upload(images));
    ASSIGN_OR_RETURN(TensorPtr features, encoder_.BackboneFeatures(*uploaded));
    return features->ToHost();
  }

 private:
  Backend& backend_;
  Encoder& encoder_;
};

class RawPixelSource final : public FeatureSource {
 public:
  absl::StatusOr<HostArray> Features(const HostArray& images) override {
    if (images.shape().empty()) return absl::InvalidArgumentError("image batch has no shape");
    const int64_t n = images.shape()[0];
    const int64_t dim = n == 0 ? 0 : images.numel() / n;
    HostArray out({n, dim}, images.data());
    L2NormalizeRows(out);
    return out;
  }
};

}  // namespace

std::unique_ptr<FeatureSource> EncoderFeatures(Backend& backend, Encoder& encoder) {
  return std::make_unique<EncoderSource>(backend, encoder);
}

std::unique_ptr<FeatureSource> RawPixelFeatures() { return std::make_unique<RawPixelSource>(); }

void L2NormalizeRows(HostArray& rows) {
  if (rows.shape().size() != 2 || rows.shape()[0] == 0) return;
  const int64_t n = rows.shape()[0], d = rows.shape()[1];
  for (int64_t i = 0; i < n; ++i) {
    float* r = rows.mutable_data().data() + i * d;
    double sq = 0;
    for (int64_t j = 0; j < d; ++j) sq += static_cast<double>(r[j]) * r[j];
    if (sq == 0) continue;
    const float inv = static_cast<float>(1.0 / std::sqrt(sq));
    for (int64_t j = 0; j < d; ++j) r[j] *= inv;
  }
}

absl::Status ForEachFeatureBatch(
    std::shared_ptr<const data::Dataset> dataset, std::shared_ptr<const data::Transform> transform,
    FeatureSource& source, const ExtractOptions& options,
    const std::function<absl::Status(const HostArray& features,
                                     const std::vector<int64_t>& labels)>& visit) {
  data::LoaderOptions lo = options.loader;
  lo.num_views = 1;
  lo.drop_last = false;
  const int64_t total = options.max_images > 0 ? std::min(options.max_images, dataset->size())
                                               : dataset->size();
  if (total == 0) return absl::OkStatus();
  if (options.max_images > 0 && lo.batch_size > 0) {
    lo.max_batches_per_epoch = (total + lo.batch_size - 1) / lo.batch_size;
  }
  ASSIGN_OR_RETURN(std::unique_ptr<data::BatchLoader> loader,
                   data::BatchLoader::Create(dataset, transform, lo));
  RETURN_IF_ERROR(loader->StartEpoch(options.epoch));
  int64_t done = 0;
  while (done < total) {
    ASSIGN_OR_RETURN(std::optional<data::HostBatch> batch, loader->Next());
    if (!batch) break;
    ASSIGN_OR_RETURN(HostArray features, source.Features(batch->views[0]));
    const int64_t n = static_cast<int64_t>(batch->labels.size());
    if (features.shape().size() != 2 || features.shape()[0] != n) {
      return absl::InternalError(absl::StrCat("feature source returned ", features.shape().size(),
                                              "-D features for a batch of ", n));
    }
    std::vector<int64_t> labels = std::move(batch->labels);
    const int64_t keep = std::min(n, total - done);
    if (keep < n) {  // the cap ends inside this batch
      features.Reshape({keep, features.shape()[1]});
      labels.resize(static_cast<size_t>(keep));
    }
    RETURN_IF_ERROR(visit(features, labels));
    done += keep;
    if (options.on_batch) options.on_batch(done, total);
    batch->labels = {};
    loader->Recycle(std::move(*batch));
  }
  return absl::OkStatus();
}

absl::StatusOr<FeatureSet> ExtractFeatures(std::shared_ptr<const data::Dataset> dataset,
                                           std::shared_ptr<const data::Transform> transform,
                                           FeatureSource& source, ExtractOptions options) {
  options.loader.shuffle = false;
  FeatureSet set;
  std::vector<float> all_features;
  int64_t dim = -1;
  RETURN_IF_ERROR(ForEachFeatureBatch(
      std::move(dataset), std::move(transform), source, options,
      [&](const HostArray& features, const std::vector<int64_t>& labels) -> absl::Status {
        if (dim < 0) dim = features.shape()[1];
        all_features.insert(all_features.end(), features.data().begin(),
                            features.data().end());
        set.labels.insert(set.labels.end(), labels.begin(), labels.end());
        return absl::OkStatus();
      }));
  set.features = HostArray({static_cast<int64_t>(set.labels.size()), std::max<int64_t>(dim, 0)},
                           std::move(all_features));
  return set;
}

}  // namespace eval
}  // namespace moco
