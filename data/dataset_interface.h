// The dataset interface: indexed, labelled images. data/dataset.h adds OpenDataset().
#ifndef DATA_DATASET_INTERFACE_H_
#define DATA_DATASET_INTERFACE_H_

#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "data/image.h"

namespace moco {
namespace data {

enum class Split { kTrain, kTest };

// A read-only, random-access collection of labelled images. All methods are safe to call
// concurrently from several threads.
class Dataset {
 public:
  virtual ~Dataset() = default;

  // Number of images; valid indices are [0, size()).
  virtual int64_t size() const = 0;
  // Labels lie in [0, num_classes()).
  virtual int num_classes() const = 0;
  // Channels of every image ReadImage() gives: 1 (grayscale) or 3 (RGB).
  virtual int channels() const = 0;
  // Class label of image `index`. Requires 0 <= index < size().
  virtual int label(int64_t index) const = 0;
  // Writes image `index` into `*out` as uint8 HWC with channels() channels, reusing its buffer
  // (no allocation once warm). An unreadable or corrupt file gives an error whose message
  // names the file (DataLossError for corrupt contents); `*out` is then unspecified.
  virtual absl::Status ReadImage(int64_t index, Image* out) const = 0;
  // ReadImage into a new Image.
  absl::StatusOr<Image> GetImage(int64_t index) const {
    Image image;
    absl::Status status = ReadImage(index, &image);
    if (!status.ok()) return status;
    return image;
  }
  // A human-readable location of image `index` for messages, e.g. "/data/train/cat/1.jpg" or
  // "/data/cifar/data_batch_2.bin record 17".
  virtual std::string Describe(int64_t index) const = 0;
};

}  // namespace data
}  // namespace moco

#endif  // DATA_DATASET_INTERFACE_H_
