#include "data/image_folder_dataset.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "data/file_util.h"
#include "data/image_codec.h"
#include "moco/core/status_macros.h"

namespace moco {
namespace data {
namespace {

namespace fs = std::filesystem;

bool HasImageExtension(const fs::path& p) {
  std::string ext = p.extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

class ImageFolderDataset final : public Dataset {
 public:
  ImageFolderDataset(std::vector<std::string> files, std::vector<int> labels, int num_classes)
      : files_(std::move(files)), labels_(std::move(labels)), num_classes_(num_classes) {}

  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  int num_classes() const override { return num_classes_; }
  int channels() const override { return 3; }
  int label(int64_t index) const override { return labels_[static_cast<size_t>(index)]; }

  absl::Status ReadImage(int64_t index, Image* out) const override {
    if (index < 0 || index >= size()) {
      return absl::OutOfRangeError(absl::StrCat("image folder index ", index, " not in [0, ",
                                                size(), ")"));
    }
    const std::string& path = files_[static_cast<size_t>(index)];
    thread_local std::string bytes;  // reused file buffer
    RETURN_IF_ERROR(ReadFileInto(path, &bytes));
    return DecodeImage(bytes, path, out);
  }

  std::string Describe(int64_t index) const override {
    return files_[static_cast<size_t>(index)];
  }

 private:
  std::vector<std::string> files_;
  std::vector<int> labels_;
  int num_classes_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<const Dataset>> OpenImageFolder(const std::string& root) {
  std::error_code ec;
  if (!fs::exists(root, ec)) {
    return absl::NotFoundError(absl::StrCat("image folder ", root, " does not exist"));
  }
  if (!fs::is_directory(root, ec)) {
    return absl::InvalidArgumentError(absl::StrCat("image folder ", root, " is not a folder"));
  }
  std::vector<fs::path> class_dirs;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.empty() && name[0] != '.' && it->is_directory(ec)) class_dirs.push_back(it->path());
  }
  if (ec) return absl::InternalError(absl::StrCat("cannot list ", root, ": ", ec.message()));
  if (class_dirs.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "image folder ", root, " has no class subfolders (expected root/<class>/<image>)"));
  }
  std::sort(class_dirs.begin(), class_dirs.end());
  std::vector<std::string> files;
  std::vector<int> labels;
  for (size_t c = 0; c < class_dirs.size(); ++c) {
    std::vector<std::string> class_files;
    for (fs::directory_iterator it(class_dirs[c], ec), end; !ec && it != end; it.increment(ec)) {
      if (it->is_regular_file(ec) && HasImageExtension(it->path())) {
        class_files.push_back(it->path().string());
      }
    }
    if (ec) {
      return absl::InternalError(
          absl::StrCat("cannot list ", class_dirs[c].string(), ": ", ec.message()));
    }
    if (class_files.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("class folder ", class_dirs[c].string(),
                                                     " has no .jpg/.jpeg/.png images"));
    }
    std::sort(class_files.begin(), class_files.end());
    for (std::string& f : class_files) {
      files.push_back(std::move(f));
      labels.push_back(static_cast<int>(c));
    }
  }
  return std::shared_ptr<const Dataset>(std::make_shared<ImageFolderDataset>(
      std::move(files), std::move(labels), static_cast<int>(class_dirs.size())));
}

}  // namespace data
}  // namespace moco
