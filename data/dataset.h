// Datasets: the Dataset interface (data/dataset_interface.h) and OpenDataset(), which opens the
// split a DataConfig names.
//
//   ASSIGN_OR_RETURN(std::shared_ptr<const Dataset> train,
//                    OpenDataset(config.data(), Split::kTrain));
//   Image img;  RETURN_IF_ERROR(train->ReadImage(0, &img));  int y = train->label(0);
#ifndef DATA_DATASET_H_
#define DATA_DATASET_H_

#include <memory>

#include "absl/status/statusor.h"
#include "data/dataset_interface.h"
#include "moco/config/config.pb.h"

namespace moco {
namespace data {

// Where Debian's dataset-fashion-mnist package puts the IDX files.
inline constexpr char kDefaultIdxFolder[] = "/usr/share/datasets/fashion-mnist";

// Opens the split named by `config`:
//   IDX:          train-/t10k-images-idx3-ubyte[.gz] and ...-labels-idx1-ubyte[.gz] in the
//                 train_path folder, or in test_path's folder for kTest when test_path is set;
//                 an empty train_path means kDefaultIdxFolder;
//   CIFAR10/100:  the binary files in train_path (or test_path for kTest when set);
//   IMAGE_FOLDER: train_path / test_path (test_path required for kTest).
// Errors name the config field or the file and what is wrong.
absl::StatusOr<std::shared_ptr<const Dataset>> OpenDataset(const DataConfig& config, Split split);

}  // namespace data
}  // namespace moco

#endif  // DATA_DATASET_H_
