// An image folder in the ImageNet layout, decoded on the fly (nothing held in memory but paths).
//
//   root/n01440764/a.JPEG, root/n01443537/b.png, ...
//   ASSIGN_OR_RETURN(auto ds, OpenImageFolder("/data/imagenet/train"));
//   // classes = sorted subfolder names (label = position), images sorted by name within a class
#ifndef DATA_IMAGE_FOLDER_DATASET_H_
#define DATA_IMAGE_FOLDER_DATASET_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "data/dataset_interface.h"

namespace moco {
namespace data {

// Lists `root`'s class subfolders (hidden ones skipped) and their .jpg/.jpeg/.png files
// (case-insensitive; found by extension, decoded by signature). Errors name the folder: root
// missing or not a folder, no class subfolders, a class subfolder with no images. Images
// decode to 3-channel RGB; GetImage on a corrupt file gives DataLossError naming the file.
absl::StatusOr<std::shared_ptr<const Dataset>> OpenImageFolder(const std::string& root);

}  // namespace data
}  // namespace moco

#endif  // DATA_IMAGE_FOLDER_DATASET_H_
