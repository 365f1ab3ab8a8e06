#include "data/idx_dataset.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
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

// Limits (docs/FUZZING.md): one image at most 2^28 pixels (as the JPEG/PNG decoders);
// all data at most 2^40 bytes. Memory grows with the bytes really read, never with a claim.
constexpr uint64_t kMaxImagePixels = uint64_t{1} << 28;
constexpr uint64_t kMaxDataBytes = uint64_t{1} << 40;
// Trailing garbage is counted up to this many bytes (a gzip bomb must not run for minutes).
constexpr size_t kMaxTrailingCount = size_t{1} << 20;

uint32_t ReadBigEndian32(const std::string& bytes, size_t offset) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data()) + offset;
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

struct IdxFile {
  std::vector<uint32_t> dims;
  std::string data;  // prod(dims) bytes, header stripped
};

// Reads the IDX file `path` (raw or gzip) with `want_dims` uint8 dimensions. The header is
// checked (magic, overflow-checked size within the limits, and for a raw file the size on
// disk) before any data is read.
absl::StatusOr<IdxFile> ReadIdxFile(const std::string& path, int want_dims) {
  ASSIGN_OR_RETURN(std::unique_ptr<MaybeGzipReader> reader, MaybeGzipReader::Open(path));
  std::string header;
  ASSIGN_OR_RETURN(size_t got, reader->Read(4, &header));
  if (got < 4) {
    return absl::DataLossError(
        absl::StrCat(path, ": truncated IDX file (", got, " bytes, no header)"));
  }
  const uint32_t magic = ReadBigEndian32(header, 0);
  const uint32_t want_magic = 0x00000800u | static_cast<uint32_t>(want_dims);
  if (magic != want_magic) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: wrong IDX magic number 0x%08x, expected 0x%08x (uint8 data with %d dimensions)", path,
        magic, want_magic, want_dims));
  }
  const size_t header_size = 4 + 4 * static_cast<size_t>(want_dims);
  ASSIGN_OR_RETURN(got, reader->Read(header_size - 4, &header));
  if (header.size() < header_size) {
    return absl::DataLossError(absl::StrCat(path, ": truncated IDX header (", header.size(),
                                            " bytes, need ", header_size, ")"));
  }
  IdxFile file;
  file.dims.resize(want_dims);
  uint64_t expected = 1;
  bool too_big = false;
  for (int d = 0; d < want_dims; ++d) {
    file.dims[d] = ReadBigEndian32(header, 4 + 4 * d);
    // Checked before multiplying: the product never wraps.
    if (file.dims[d] != 0 && expected > kMaxDataBytes / file.dims[d]) too_big = true;
    if (!too_big) expected *= file.dims[d];
  }
  std::string dims_text = absl::StrCat(file.dims[0]);
  for (int d = 1; d < want_dims; ++d) absl::StrAppend(&dims_text, " x ", file.dims[d]);
  if (too_big) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": IDX header dims ", dims_text,
                                                   " exceed the limit of 2^40 data bytes"));
  }
  if (want_dims == 3 && uint64_t{file.dims[1]} * file.dims[2] > kMaxImagePixels) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": IDX images of ", file.dims[1], " x ",
                                                   file.dims[2],
                                                   " pixels exceed the limit of 2^28 pixels"));
  }
  if (!reader->compressed() && reader->disk_size() >= 0) {
    const uint64_t have = static_cast<uint64_t>(reader->disk_size()) - header_size;
    if (have < expected) {
      return absl::DataLossError(absl::StrCat(path, ": truncated IDX file: header promises ",
                                              expected, " data bytes, file has ", have));
    }
    file.data.reserve(static_cast<size_t>(expected));
  }
  ASSIGN_OR_RETURN(got, reader->Read(static_cast<size_t>(expected), &file.data));
  if (got < expected) {
    return absl::DataLossError(absl::StrCat(path, ": truncated IDX file: header promises ",
                                            expected, " data bytes, file has ", got));
  }
  std::string trailing;
  ASSIGN_OR_RETURN(got, reader->Read(kMaxTrailingCount + 1, &trailing));
  if (got > 0) {
    return absl::DataLossError(absl::StrCat(path, ": IDX file has ",
                                            got > kMaxTrailingCount ? "more than " : "",
                                            std::min(got, kMaxTrailingCount), " bytes beyond the ",
                                            expected, " its header declares"));
  }
  return file;
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
  ASSIGN_OR_RETURN(IdxFile images, ReadIdxFile(images_path, 3));
  ASSIGN_OR_RETURN(IdxFile labels, ReadIdxFile(labels_path, 1));
  const std::vector<uint32_t>& image_dims = images.dims;
  if (image_dims[0] != labels.dims[0]) {
    return absl::InvalidArgumentError(absl::StrCat(labels_path, " has ", labels.dims[0],
                                                   " labels but ", images_path, " has ",
                                                   image_dims[0], " images"));
  }
  if (image_dims[0] == 0 || image_dims[1] == 0 || image_dims[2] == 0) {
    return absl::InvalidArgumentError(absl::StrCat(images_path, ": empty IDX image file (dims ",
                                                   image_dims[0], " x ", image_dims[1], " x ",
                                                   image_dims[2], ")"));
  }
  std::vector<uint8_t> label_values(labels.data.begin(), labels.data.end());
  const int num_classes = *std::max_element(label_values.begin(), label_values.end()) + 1;
  return std::shared_ptr<const Dataset>(std::make_shared<IdxDataset>(
      images_path, std::move(images.data), std::move(label_values),
      static_cast<int>(image_dims[1]), static_cast<int>(image_dims[2]), num_classes));
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
