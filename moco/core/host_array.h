// Named host arrays: the backend-neutral form of parameters, buffers and batches.
//
// Every backend can export its encoders, queue and optimizer state as NamedArrays and import
// them back; checkpoints, cross-backend tests and PyTorch interop are built on this.
//
//   HostArray w({64, 3, 3, 3});                      // zero-filled, row-major (C order)
//   ASSIGN_OR_RETURN(HostArray b, HostArray::FromData({2}, {0.5f, 1.5f}));  // size checked
//   w.mutable_data()[0] = 1.0f;
//   state.at("conv1.weight").shape()                 // {64, 3, 3, 3}
//
// Invariant: data().size() == product(shape()), every dimension >= 0. It holds for every
// HostArray: the constructors CHECK it (for shapes and data the code made itself), FromData
// returns an error instead (for anything read or received), and the data can be changed but
// not resized. So a backend importing a HostArray can trust its size.
#ifndef MOCO_CORE_HOST_ARRAY_H_
#define MOCO_CORE_HOST_ARRAY_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace moco {

// A dense float32 array in host memory, row-major. Integer buffers (e.g. BN's
// num_batches_tracked, the queue pointer) are stored as floats holding exact integers
// (exact up to 2^24).
class HostArray {
 public:
  // Shape {0}: no elements.
  HostArray() : shape_{0} {}
  // Zero-filled. CHECK-fails on a negative dimension or an element count past 2^62: a
  // programming error (shapes from files or the network go through FromData).
  explicit HostArray(std::vector<int64_t> shape);
  // Takes `data`; CHECK-fails unless data.size() == product(shape): for data the code made
  // itself (tests, computed results). Data read from outside goes through FromData.
  HostArray(std::vector<int64_t> shape, std::vector<float> data);
  // InvalidArgument unless every dimension is >= 0 and data.size() == product(shape).
  static absl::StatusOr<HostArray> FromData(std::vector<int64_t> shape, std::vector<float> data);

  const std::vector<int64_t>& shape() const { return shape_; }
  const std::vector<float>& data() const { return data_; }
  absl::Span<float> mutable_data() { return absl::MakeSpan(data_); }
  int64_t numel() const { return static_cast<int64_t>(data_.size()); }
  // Changes the shape and resizes the data to match: values are kept up to the new size, new
  // ones are zero, and the allocation is kept when the size does not grow (buffer reuse).
  // CHECK-fails like the constructor.
  void Reshape(std::vector<int64_t> shape);

  // product(shape); InvalidArgument for a negative dimension or a product past 2^62.
  static absl::StatusOr<int64_t> NumElements(const std::vector<int64_t>& shape);

  friend bool operator==(const HostArray& a, const HostArray& b) {
    return a.shape_ == b.shape_ && a.data_ == b.data_;
  }

 private:
  struct Unchecked {};
  HostArray(Unchecked, std::vector<int64_t> shape, std::vector<float> data)
      : shape_(std::move(shape)), data_(std::move(data)) {}

  std::vector<int64_t> shape_;
  std::vector<float> data_;
};

// "(64, 3, 3, 3)": for messages.
std::string ShapeToString(const std::vector<int64_t>& shape);

// Ordered by name so that exports, checkpoints and diffs are deterministic.
using NamedArrays = std::map<std::string, HostArray>;

// Named arrays in a meaningful order (e.g. a network's layers in execution order).
using OrderedArrays = std::vector<std::pair<std::string, HostArray>>;

}  // namespace moco

#endif  // MOCO_CORE_HOST_ARRAY_H_
