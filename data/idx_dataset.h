// MNIST / Fashion-MNIST IDX files (gzip-compressed or raw), held in memory.
//
//   ASSIGN_OR_RETURN(auto train, OpenIdxSplit("/usr/share/datasets/fashion-mnist", Split::kTrain));
//   // reads train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]
#ifndef DATA_IDX_DATASET_H_
#define DATA_IDX_DATASET_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "data/dataset_interface.h"

namespace moco {
namespace data {

// Reads an IDX image file (magic 0x00000803: uint8, dims N x H x W) and an IDX label file
// (magic 0x00000801: uint8, dims N). Errors name the file: missing file, wrong magic,
// truncated data, trailing bytes, or a label count different from the image count.
// Images are 1-channel; num_classes() is the largest label + 1.
absl::StatusOr<std::shared_ptr<const Dataset>> OpenIdxDataset(const std::string& images_path,
                                                              const std::string& labels_path);

// The split's files in `folder`: "train-" or "t10k-" + "images-idx3-ubyte" / "labels-idx1-ubyte",
// each either raw or with a ".gz" suffix (the raw file wins when both exist).
absl::StatusOr<std::shared_ptr<const Dataset>> OpenIdxSplit(const std::string& folder, Split split);

}  // namespace data
}  // namespace moco

#endif  // DATA_IDX_DATASET_H_
