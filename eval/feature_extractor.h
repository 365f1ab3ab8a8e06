// Features of a dataset split from one of the evaluated "encoders": a backend encoder's pooled
// backbone features (learned or random-init; eval mode, BN running statistics, no gradient) or
// the raw-pixel baseline (the evaluation view's normalized pixels, flattened, L2-normalized).
//
//   ASSIGN_OR_RETURN(auto source, EncoderFeatures(*backend, *encoder));
//   ASSIGN_OR_RETURN(auto eval_view, data::MakeEvalTransform(config.data(), in_channels));
//   ExtractOptions options;   // loader: batch size, workers; images in dataset order
//   ASSIGN_OR_RETURN(FeatureSet train, ExtractFeatures(train_set, eval_view, *source, options));
//   // train.features (N, dim), train.labels (N)
#ifndef EVAL_FEATURE_EXTRACTOR_H_
#define EVAL_FEATURE_EXTRACTOR_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "data/batch_loader.h"
#include "data/dataset_interface.h"
#include "data/transform.h"
#include "moco/core/backend.h"
#include "moco/core/communicator.h"
#include "moco/core/encoder.h"
#include "moco/core/host_array.h"

namespace moco {
namespace eval {

// Maps an image batch (N, C, H, W) to features (N, dim()).
class FeatureSource {
 public:
  virtual ~FeatureSource() = default;
  virtual absl::StatusOr<HostArray> Features(const HostArray& images) = 0;
};

// Backbone features of `encoder` computed by `backend` (both must outlive the source).
std::unique_ptr<FeatureSource> EncoderFeatures(Backend& backend, Encoder& encoder);

// The raw-pixel baseline: each image flattened (C*H*W values) and L2-normalized.
std::unique_ptr<FeatureSource> RawPixelFeatures();

// Divides every row of a 2-D array by its L2 norm (rows of norm 0 stay 0).
void L2NormalizeRows(HostArray& rows);

struct FeatureSet {
  HostArray features;            // (N, dim)
  std::vector<int64_t> labels;   // N
};

struct ExtractOptions {
  // batch_size, num_workers, prefetch_batches, seed, on_corrupt_image and shuffle are used;
  // num_views is forced to 1 and drop_last to false. Loader errors (e.g. a corrupt image) come
  // back naming the file. ForEachFeatureBatch also takes loader.rank and loader.world_size:
  // with world_size > 1 each rank streams its slice of every global batch of batch_size and,
  // as every rank needs whole global batches, the last partial one is dropped (drop_last).
  data::LoaderOptions loader;
  int64_t epoch = 0;          // the loader epoch (order and augmentation streams)
  int64_t max_images = 0;     // stop after this many images (0 = the whole split)
  // Called after every batch with the images done so far and the total expected (with a
  // communicator: this rank's images of its shard).
  std::function<void(int64_t done, int64_t total)> on_batch;
  // Data parallel (ExtractFeatures only): with a communicator of world W > 1, rank r extracts
  // only the r-th of W contiguous shards of the (capped) split and the shards are all-gathered,
  // so every rank returns the whole split in dataset order. Every rank of the group must call
  // with the same dataset and options. Null, or world 1: this process extracts everything.
  Communicator* communicator = nullptr;
};

// What one pass of ForEachFeatureBatch over `dataset_size` images covers: the whole split or
// max_images of it, in global batches of loader.batch_size (> 0). One process keeps the last
// partial batch; with loader.world_size > 1 it is dropped, so images = batches * batch_size.
struct FeaturePass {
  int64_t images = 0;
  int64_t batches = 0;
};
FeaturePass PlanFeaturePass(int64_t dataset_size, const ExtractOptions& options);

// Streams (features, labels) batch by batch through `visit` (stops at its first error).
// With loader.world_size > 1, max_images is rounded down to whole global batches (an error if
// that leaves none).
absl::Status ForEachFeatureBatch(
    std::shared_ptr<const data::Dataset> dataset, std::shared_ptr<const data::Transform> transform,
    FeatureSource& source, const ExtractOptions& options,
    const std::function<absl::Status(const HostArray& features,
                                     const std::vector<int64_t>& labels)>& visit);

// Every rank's (features, labels) in rank order, so every rank holds the global batch: one
// all-gather of each rank's rows followed by its labels as floats (class indices, exact below
// 2^24). Every rank must pass the same number of rows and the same feature width.
absl::StatusOr<FeatureSet> GatherFeatureBatch(const HostArray& features,
                                              const std::vector<int64_t>& labels,
                                              Communicator& comm);

// The whole split's features in dataset order (loader.shuffle is forced to false), sharded
// over options.communicator's ranks when it has more than one.
absl::StatusOr<FeatureSet> ExtractFeatures(std::shared_ptr<const data::Dataset> dataset,
                                           std::shared_ptr<const data::Transform> transform,
                                           FeatureSource& source, ExtractOptions options);

}  // namespace eval
}  // namespace moco

#endif  // EVAL_FEATURE_EXTRACTOR_H_
