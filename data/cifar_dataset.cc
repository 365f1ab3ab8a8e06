#include "data/cifar_dataset.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "data/file_util.h"
#include "moco/core/status_macros.h"

namespace moco {
namespace data {
namespace {

constexpr int kSide = 32;
constexpr int kPlane = kSide * kSide;
constexpr int kPixelBytes = 3 * kPlane;

class CifarDataset final : public Dataset {
 public:
  CifarDataset(std::vector<std::string> paths, std::vector<int64_t> first_index,
               std::vector<uint8_t> hwc, std::vector<uint8_t> labels, int num_classes)
      : paths_(std::move(paths)),
        first_index_(std::move(first_index)),
        hwc_(std::move(hwc)),
        labels_(std::move(labels)),
        num_classes_(num_classes) {}

  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
  int num_classes() const override { return num_classes_; }
  int channels() const override { return 3; }
  int label(int64_t index) const override { return labels_[static_cast<size_t>(index)]; }

  absl::Status ReadImage(int64_t index, Image* out) const override {
    if (index < 0 || index >= size()) {
      return absl::OutOfRangeError(absl::StrCat("CIFAR image index ", index, " not in [0, ",
                                                size(), ") (", paths_.front(), "...)"));
    }
    out->Reshape(kSide, kSide, 3);
    const uint8_t* src = hwc_.data() + static_cast<size_t>(index) * kPixelBytes;
    std::copy(src, src + kPixelBytes, out->pixels.begin());
    return absl::OkStatus();
  }

  std::string Describe(int64_t index) const override {
    size_t f = 0;
    while (f + 1 < first_index_.size() && first_index_[f + 1] <= index) ++f;
    return absl::StrCat(paths_[f], " record ", index - first_index_[f]);
  }

 private:
  std::vector<std::string> paths_;
  std::vector<int64_t> first_index_;  // dataset index of each file's first record
  std::vector<uint8_t> hwc_;
  std::vector<uint8_t> labels_;
  int num_classes_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<const Dataset>> OpenCifarFiles(const std::vector<std::string>& paths,
                                                              int num_classes) {
  if (num_classes != 10 && num_classes != 100) {
    return absl::InvalidArgumentError(
        absl::StrCat("CIFAR num_classes must be 10 or 100, got ", num_classes));
  }
  if (paths.empty()) return absl::InvalidArgumentError("no CIFAR files given");
  const int label_bytes = num_classes == 10 ? 1 : 2;
  const size_t record = label_bytes + kPixelBytes;
  std::vector<int64_t> first_index;
  std::vector<uint8_t> hwc, labels;
  for (const std::string& path : paths) {
    ASSIGN_OR_RETURN(std::string bytes, ReadFileBytes(path));
    if (bytes.empty()) return absl::DataLossError(absl::StrCat(path, ": empty CIFAR file"));
    if (bytes.size() % record != 0) {
      return absl::DataLossError(absl::StrCat(
          path, ": truncated or not a CIFAR-", num_classes, " binary file: size ", bytes.size(),
          " is not a multiple of the ", record, "-byte record"));
    }
    const size_t n = bytes.size() / record;
    first_index.push_back(static_cast<int64_t>(labels.size()));
    const size_t base = hwc.size();
    hwc.resize(base + n * kPixelBytes);
    for (size_t r = 0; r < n; ++r) {
      const auto* rec = reinterpret_cast<const uint8_t*>(bytes.data()) + r * record;
      const int label = rec[label_bytes - 1];
      if (label >= num_classes) {
        return absl::DataLossError(absl::StrCat(path, " record ", r, ": label ", label,
                                                " out of range for CIFAR-", num_classes));
      }
      labels.push_back(static_cast<uint8_t>(label));
      const uint8_t* planes = rec + label_bytes;
      uint8_t* dst = hwc.data() + base + r * kPixelBytes;
      for (int p = 0; p < kPlane; ++p) {
        dst[3 * p + 0] = planes[p];
        dst[3 * p + 1] = planes[kPlane + p];
        dst[3 * p + 2] = planes[2 * kPlane + p];
      }
    }
  }
  return std::shared_ptr<const Dataset>(std::make_shared<CifarDataset>(
      paths, std::move(first_index), std::move(hwc), std::move(labels), num_classes));
}

absl::StatusOr<std::shared_ptr<const Dataset>> OpenCifarSplit(const std::string& folder,
                                                              int num_classes, Split split) {
  const std::string dir = folder.empty() || folder.back() == '/' ? folder : folder + "/";
  std::vector<std::string> paths;
  if (num_classes == 10) {
    if (split == Split::kTrain) {
      for (int i = 1; i <= 5; ++i) paths.push_back(absl::StrCat(dir, "data_batch_", i, ".bin"));
    } else {
      paths.push_back(dir + "test_batch.bin");
    }
  } else {
    paths.push_back(dir + (split == Split::kTrain ? "train.bin" : "test.bin"));
  }
  return OpenCifarFiles(paths, num_classes);
}

}  // namespace data
}  // namespace moco
