// Features of a whole dataset split through a backend's encoder (or raw pixels), for the kNN
// monitor and the evaluation pipelines. Images go through the deterministic eval transform
// (data/transform.h MakeEvalTransform) in dataset order.
//
//   ASSIGN_OR_RETURN(LabeledFeatures f, ExtractBackboneFeatures(backend, encoder, *test_set,
//                                                               eval_transform, options));
#ifndef MOCO_FEATURE_EXTRACTION_H_
#define MOCO_FEATURE_EXTRACTION_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "data/dataset_interface.h"
#include "data/transform.h"
#include "moco/backend.h"
#include "moco/host_array.h"

namespace moco {

struct LabeledFeatures {
  HostArray features;            // (N, D)
  std::vector<int64_t> labels;   // N
};

struct ExtractionOptions {
  int batch_size = 256;
  int num_workers = 2;
  int64_t max_images = 0;  // 0 = the whole split; otherwise its first max_images images
};

// Pooled backbone features (Encoder::BackboneFeatures: eval-mode BN, no gradient).
absl::StatusOr<LabeledFeatures> ExtractBackboneFeatures(
    Backend& backend, Encoder& encoder, std::shared_ptr<const data::Dataset> dataset,
    std::shared_ptr<const data::Transform> transform, const ExtractionOptions& options);

// The eval view's normalized pixels, flattened: the raw-pixel baseline.
absl::StatusOr<LabeledFeatures> ExtractRawPixels(std::shared_ptr<const data::Dataset> dataset,
                                                 std::shared_ptr<const data::Transform> transform,
                                                 const ExtractionOptions& options);

}  // namespace moco

#endif  // MOCO_FEATURE_EXTRACTION_H_
