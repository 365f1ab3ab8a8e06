#include "fuzz/dataset_check.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace moco {
namespace fuzz {
namespace {

void Require(bool ok, const char* what, int64_t index) {
  if (ok) return;
  std::fprintf(stderr, "fuzz: dataset broke its contract at image %lld: %s\n",
               static_cast<long long>(index), what);
  std::abort();
}

void CheckImage(const data::Dataset& dataset, int64_t index) {
  const int label = dataset.label(index);
  Require(label >= 0 && label < dataset.num_classes(), "label outside [0, num_classes)", index);
  dataset.Describe(index);
  data::Image image;
  absl::Status status = dataset.ReadImage(index, &image);
  if (!status.ok()) return;  // a corrupt image is reported, not a contract violation
  Require(image.channels == dataset.channels(), "channels differ from channels()", index);
  Require(image.height > 0 && image.width > 0, "empty image", index);
  Require(image.pixels.size() == static_cast<size_t>(image.height) * image.width * image.channels,
          "pixel count differs from the shape", index);
}

}  // namespace

void CheckDataset(const data::Dataset& dataset, int max_images) {
  const int64_t n = dataset.size();
  Require(n > 0, "an accepted dataset is empty", 0);
  Require(dataset.num_classes() > 0, "num_classes() <= 0", 0);
  Require(dataset.channels() == 1 || dataset.channels() == 3, "channels() not 1 or 3", 0);
  const int64_t head = std::min<int64_t>(n, max_images / 2);
  for (int64_t i = 0; i < head; ++i) CheckImage(dataset, i);
  for (int64_t i = std::max(head, n - max_images / 2); i < n; ++i) CheckImage(dataset, i);
}

}  // namespace fuzz
}  // namespace moco
