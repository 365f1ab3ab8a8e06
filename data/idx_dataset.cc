#include "data/idx_dataset.h"

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "data/file_util.h"
#include "moco/core/status_macros.h"

namespace moco {
namespace data {
namespace {

uint32_t ReadBigEndian32(const std::string& bytes, size_t offset) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data()) + offset;
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// Checks the IDX header of `bytes` (read from `path`) against the expected number of
// dimensions and returns the dimension sizes.
absl::StatusOr<std::vector<uint32_t>> ParseIdxHeader(const std::string& path,
                                                     const std::string& bytes, int want_dims) {
  if (bytes.size() < 4) {
    return absl::DataLossError(
        absl::StrCat(path, ": truncated IDX file (", bytes.size(), " bytes, no header)"));
  }
  const uint32_t magic = ReadBigEndian32(bytes, 0);
  const uint32_t want_magic = 0x00000800u | static_cast<uint32_t>(want_dims);
  if (magic != want_magic) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: wrong IDX magic number 0x%08x, expected 0x%08x (uint8 data with %d dimensions)", path,
        magic, want_magic, want_dims));
  }
  const size_t header = 4 + 4 * static_cast<size_t>(want_dims);
  if (bytes.size() < header) {
    return absl::DataLossError(absl::StrCat(path, ": truncated IDX header (", bytes.size(),
                                            " bytes, need ", header, ")"));
  }
  std::vector<uint32_t> dims(want_dims);
  size_t expected = 1;
  for (int d = 0; d < want_dims; ++d) {
    dims[d] = ReadBigEndian32(bytes, 4 + 4 * d);
    expected *= dims[d];
  }
  const size_t have = bytes.size() - header;
  if (have < expected) {
    return absl::DataLossError(absl::StrCat(path, ": truncated IDX file: header promises ",
                                            expected, " data bytes, file has ", have));
  }
  if (have > expected) {
    return absl::DataLossError(absl::StrCat(path, ": IDX file has ", have - expected,
                                            " bytes beyond the ", expected, " its header declares"));
  }
  return dims;
}

class IdxDataset final : public Dataset {
 public:
  IdxDataset(std::string images_path, std::string pixels, std::vector<uint8_t> labels, int height,
             int width, int num_classes)
      : images_path_(std::move(images_path)),
        pixels_(std::move(pixels)),
        labels_(std::move(labels)),
        height_(height),
        width_(width),
        num_classes_(num_classes) {}

  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
  int num_classes() const override { return num_classes_; }
  int channels() const override { return 1; }
  int label(int64_t index) const override { return labels_[static_cast<size_t>(index)]; }

  absl::Status ReadImage(int64_t index, Image* out) const override {
    if (index < 0 || index >= size()) {
      return absl::OutOfRangeError(
          absl::StrCat(images_path_, ": image index ", index, " not in [0, ", size(), ")"));
    }
    out->Reshape(height_, width_, 1);
    const size_t n = out->num_values();
    std::memcpy(out->pixels.data(), pixels_.data() + static_cast<size_t>(index) * n, n);
    return absl::OkStatus();
  }

  std::string Describe(int64_t index) const override {
    return absl::StrCat(images_path_, " image ", index);
  }

 private:
  std::string images_path_;
  std::string pixels_;  // N * H * W bytes, header stripped
  std::vector<uint8_t> labels_;
  int height_, width_, num_classes_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<const Dataset>> OpenIdxDataset(const std::string& images_path,
                                                              const std::string& labels_path) {
  ASSIGN_OR_RETURN(std::string image_bytes, ReadMaybeGzipFile(images_path));
  ASSIGN_OR_RETURN(std::vector<uint32_t> image_dims, ParseIdxHeader(images_path, image_bytes, 3));
  ASSIGN_OR_RETURN(std::string label_bytes, ReadMaybeGzipFile(labels_path));
  ASSIGN_OR_RETURN(std::vector<uint32_t> label_dims, ParseIdxHeader(labels_path, label_bytes, 1));
  if (image_dims[0] != label_dims[0]) {
    return absl::InvalidArgumentError(absl::StrCat(labels_path, " has ", label_dims[0],
                                                   " labels but ", images_path, " has ",
                                                   image_dims[0], " images"));
  }
  if (image_dims[0] == 0 || image_dims[1] == 0 || image_dims[2] == 0) {
    return absl::InvalidArgumentError(absl::StrCat(images_path, ": empty IDX image file (dims ",
                                                   image_dims[0], " x ", image_dims[1], " x ",
                                                   image_dims[2], ")"));
  }
  std::vector<uint8_t> labels(label_bytes.begin() + 8, label_bytes.end());
  const int num_classes = *std::max_element(labels.begin(), labels.end()) + 1;
  image_bytes.erase(0, 16);
  image_bytes.shrink_to_fit();
  return std::shared_ptr<const Dataset>(std::make_shared<IdxDataset>(
      images_path, std::move(image_bytes), std::move(labels), static_cast<int>(image_dims[1]),
      static_cast<int>(image_dims[2]), num_classes));
}

absl::StatusOr<std::shared_ptr<const Dataset>> OpenIdxSplit(const std::string& folder,
                                                            Split split) {
  const std::string prefix =
      absl::StrCat(folder, folder.empty() || folder.back() == '/' ? "" : "/",
                   split == Split::kTrain ? "train" : "t10k");
  auto pick = [](const std::string& raw) {
    if (IsRegularFile(raw)) return raw;
    return raw + ".gz";
  };
  const std::string images = pick(prefix + "-images-idx3-ubyte");
  const std::string labels = pick(prefix + "-labels-idx1-ubyte");
  if (!IsRegularFile(images)) {
    return absl::NotFoundError(absl::StrCat("IDX images not found: neither ", prefix,
                                            "-images-idx3-ubyte nor ", images, " exists"));
  }
  if (!IsRegularFile(labels)) {
    return absl::NotFoundError(absl::StrCat("IDX labels not found: neither ", prefix,
                                            "-labels-idx1-ubyte nor ", labels, " exists"));
  }
  return OpenIdxDataset(images, labels);
}

}  // namespace data
}  // namespace moco
