#include "eval/feature_extractor.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "data/dataset_range.h"
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

FeaturePass PlanFeaturePass(int64_t dataset_size, const ExtractOptions& options) {
  const int64_t capped =
      options.max_images > 0 ? std::min(options.max_images, dataset_size) : dataset_size;
  const int64_t batch = options.loader.batch_size;
  if (options.loader.world_size > 1) {
    const int64_t batches = capped / batch;
    return {batches * batch, batches};
  }
  return {capped, (capped + batch - 1) / batch};
}

absl::Status ForEachFeatureBatch(
    std::shared_ptr<const data::Dataset> dataset, std::shared_ptr<const data::Transform> transform,
    FeatureSource& source, const ExtractOptions& options,
    const std::function<absl::Status(const HostArray& features,
                                     const std::vector<int64_t>& labels)>& visit) {
  data::LoaderOptions lo = options.loader;
  lo.num_views = 1;
  const bool sharded = lo.world_size > 1;
  lo.drop_last = sharded;  // every rank needs whole global batches
  const int64_t total = options.max_images > 0 ? std::min(options.max_images, dataset->size())
                                               : dataset->size();
  if (total == 0) return absl::OkStatus();
  if (options.max_images > 0 && lo.batch_size > 0) {
    lo.max_batches_per_epoch = PlanFeaturePass(dataset->size(), options).batches;
    if (lo.max_batches_per_epoch == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "a cap of ", total, " images is less than one global batch of ", lo.batch_size,
          " over ", lo.world_size, " ranks"));
    }
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

absl::StatusOr<FeatureSet> GatherFeatureBatch(const HostArray& features,
                                              const std::vector<int64_t>& labels,
                                              Communicator& comm) {
  const int64_t n = features.shape()[0], dim = features.shape()[1];
  std::vector<float> mine(features.data().begin(), features.data().end());
  for (int64_t label : labels) mine.push_back(static_cast<float>(label));
  ASSIGN_OR_RETURN(std::vector<float> all, comm.AllGatherHostFloats(mine));
  const int64_t stride = n * (dim + 1), world = comm.world_size();
  std::vector<float> all_features;
  all_features.reserve(static_cast<size_t>(world * n * dim));
  FeatureSet set;
  set.labels.reserve(static_cast<size_t>(world * n));
  for (int64_t r = 0; r < world; ++r) {
    const float* slot = all.data() + r * stride;
    all_features.insert(all_features.end(), slot, slot + n * dim);
    for (int64_t i = 0; i < n; ++i) set.labels.push_back(static_cast<int64_t>(slot[n * dim + i]));
  }
  set.features = HostArray({world * n, dim}, std::move(all_features));
  return set;
}

namespace {

// This process's extraction of the whole (capped) split, in dataset order.
absl::StatusOr<FeatureSet> ExtractHere(std::shared_ptr<const data::Dataset> dataset,
                                       std::shared_ptr<const data::Transform> transform,
                                       FeatureSource& source, ExtractOptions options) {
  options.loader.shuffle = false;
  if (options.max_images > 0 && options.max_images < dataset->size()) {
    // In dataset order a cap is a prefix: extract just it, not the rest of its last batch.
    dataset = std::make_shared<data::DatasetRange>(dataset, 0, options.max_images);
    options.max_images = 0;
  }
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

// Labels travel through the float all-gather; integers up to 2^24 are exact in a float.
constexpr int64_t kMaxExactLabel = int64_t{1} << 24;

// Rank r extracts rows [r * per_rank, (r + 1) * per_rank) of the capped split; one all-gather
// of (per_rank rows of features + per_rank labels) per rank, zero-padded where a shard is short,
// then the shards are laid end to end in rank order: dataset order, as in world 1.
absl::StatusOr<FeatureSet> ExtractSharded(std::shared_ptr<const data::Dataset> dataset,
                                          std::shared_ptr<const data::Transform> transform,
                                          FeatureSource& source, ExtractOptions options) {
  Communicator& comm = *options.communicator;
  const int64_t world = comm.world_size();
  const int64_t total = options.max_images > 0 ? std::min(options.max_images, dataset->size())
                                               : dataset->size();
  const int64_t per_rank = (total + world - 1) / world;
  auto shard_begin = [&](int64_t r) { return std::min(total, r * per_rank); };
  auto shard = std::make_shared<data::DatasetRange>(dataset, shard_begin(comm.rank()),
                                                    shard_begin(comm.rank() + 1));
  options.communicator = nullptr;
  options.max_images = 0;
  ASSIGN_OR_RETURN(FeatureSet mine, ExtractHere(shard, std::move(transform), source, options));
  const int64_t my_rows = mine.features.shape()[0];
  std::string bad_label;
  for (int64_t i = 0; i < my_rows && bad_label.empty(); ++i) {
    const int64_t label = mine.labels[static_cast<size_t>(i)];
    if (label < 0 || label >= kMaxExactLabel) {
      bad_label = absl::StrCat("sharded feature extraction: label ", label, " of ",
                               shard->Describe(i), " is outside [0, 2^24)");
    }
  }
  // Each rank's feature width (-1: empty shard, which does not know it; -2: a bad label, so
  // every rank stops here rather than leaving the others in the next collective).
  const int64_t my_dim = !bad_label.empty() ? -2 : my_rows > 0 ? mine.features.shape()[1] : -1;
  ASSIGN_OR_RETURN(std::vector<int64_t> dims, comm.AllGatherHost(my_dim));
  if (!bad_label.empty()) return absl::InvalidArgumentError(bad_label);
  const int64_t dim = *std::max_element(dims.begin(), dims.end());
  for (size_t r = 0; r < dims.size(); ++r) {
    if (dims[r] == -2) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sharded feature extraction: rank ", r, " found a label outside [0, 2^24)"));
    }
    if (dims[r] >= 0 && dims[r] != dim) {
      return absl::InternalError(absl::StrCat("sharded feature extraction: ranks produced ",
                                              "features of width ", dims[r], " and ", dim));
    }
  }
  if (dim < 0) return FeatureSet{HostArray({0, 0}), {}};
  // Every shard padded to per_rank rows (zeros, label 0) for the equal-size all-gather.
  std::vector<float> padded(static_cast<size_t>(per_rank * dim), 0.0f);
  std::copy(mine.features.data().begin(), mine.features.data().end(), padded.begin());
  mine.labels.resize(static_cast<size_t>(per_rank), 0);
  ASSIGN_OR_RETURN(FeatureSet all, GatherFeatureBatch(HostArray({per_rank, dim}, std::move(padded)),
                                                      mine.labels, comm));
  FeatureSet set;
  std::vector<float> features;
  features.reserve(static_cast<size_t>(total * dim));
  set.labels.reserve(static_cast<size_t>(total));
  for (int64_t r = 0; r < world; ++r) {
    const int64_t rows = shard_begin(r + 1) - shard_begin(r);
    const float* base = all.features.data().data() + r * per_rank * dim;
    features.insert(features.end(), base, base + rows * dim);
    const auto labels = all.labels.begin() + r * per_rank;
    set.labels.insert(set.labels.end(), labels, labels + rows);
  }
  set.features = HostArray({total, dim}, std::move(features));
  return set;
}

}  // namespace

absl::StatusOr<FeatureSet> ExtractFeatures(std::shared_ptr<const data::Dataset> dataset,
                                           std::shared_ptr<const data::Transform> transform,
                                           FeatureSource& source, ExtractOptions options) {
  if (options.communicator != nullptr && options.communicator->world_size() > 1) {
    return ExtractSharded(std::move(dataset), std::move(transform), source, std::move(options));
  }
  return ExtractHere(std::move(dataset), std::move(transform), source, std::move(options));
}

}  // namespace eval
}  // namespace moco
