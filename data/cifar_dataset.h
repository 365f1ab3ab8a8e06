// CIFAR-10 / CIFAR-100 binary version, held in memory as HWC RGB.
//
//   ASSIGN_OR_RETURN(auto train, OpenCifarSplit("/data/cifar-10-batches-bin", 10, Split::kTrain));
#ifndef DATA_CIFAR_DATASET_H_
#define DATA_CIFAR_DATASET_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/dataset_interface.h"

namespace moco {
namespace data {

// Reads CIFAR binary record files. CIFAR-10 (num_classes 10): records of 1 label byte +
// 3072 pixel bytes; CIFAR-100 (num_classes 100): 1 coarse + 1 fine label byte + 3072, fine
// labels used. Pixels are stored as 32x32 R, G, B planes and returned as HWC. Errors name the
// file: missing, size not a multiple of the record size (truncated), empty, label out of range.
absl::StatusOr<std::shared_ptr<const Dataset>> OpenCifarFiles(const std::vector<std::string>& paths,
                                                              int num_classes);

// The split's files in `folder`: CIFAR-10 data_batch_1..5.bin (train) / test_batch.bin (test);
// CIFAR-100 train.bin / test.bin.
absl::StatusOr<std::shared_ptr<const Dataset>> OpenCifarSplit(const std::string& folder,
                                                              int num_classes, Split split);

}  // namespace data
}  // namespace moco

#endif  // DATA_CIFAR_DATASET_H_
