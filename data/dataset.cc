#include "data/dataset.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "data/cifar_dataset.h"
#include "data/idx_dataset.h"
#include "data/image_folder_dataset.h"
#include "glog/logging.h"

namespace moco {
namespace data {

absl::StatusOr<std::shared_ptr<const Dataset>> OpenDataset(const DataConfig& config, Split split) {
  const bool test = split == Split::kTest;
  std::string path = config.train_path();
  const char* field = "data.train_path";
  if (test && !config.test_path().empty()) {
    path = config.test_path();
    field = "data.test_path";
  }
  if (path.empty() && config.dataset() == DataConfig::IDX) {
    path = kDefaultIdxFolder;
    LOG(INFO) << field << " is empty: using Debian's dataset-fashion-mnist at " << path;
  }
  if (path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is empty"));
  }
  switch (config.dataset()) {
    case DataConfig::IDX:
      return OpenIdxSplit(path, split);
    case DataConfig::CIFAR10:
      return OpenCifarSplit(path, 10, split);
    case DataConfig::CIFAR100:
      return OpenCifarSplit(path, 100, split);
    case DataConfig::IMAGE_FOLDER:
      if (test && config.test_path().empty()) {
        return absl::InvalidArgumentError(
            "data.test_path is empty: an IMAGE_FOLDER test split needs its own folder");
      }
      return OpenImageFolder(path);
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "data.dataset (", DataConfig::Dataset_Name(config.dataset()),
          ") must be IDX, CIFAR10, CIFAR100 or IMAGE_FOLDER"));
  }
}

}  // namespace data
}  // namespace moco
