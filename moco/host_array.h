// Named host arrays: the backend-neutral form of parameters, buffers and batches.
//
// Every backend can export its encoders, queue and optimizer state as NamedArrays and import
// them back; checkpoints, cross-backend tests and PyTorch interop are built on this.
//
//   HostArray w({64, 3, 3, 3});            // zero-filled, row-major (C order)
//   NamedArrays state = encoder.ExportState();
//   state.at("conv1.weight").shape         // {64, 3, 3, 3}
#ifndef MOCO_HOST_ARRAY_H_
#define MOCO_HOST_ARRAY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

namespace moco {

// A dense float32 array in host memory, row-major. Integer buffers (e.g. BN's
// num_batches_tracked, the queue pointer) are stored as floats holding exact integers
// (exact up to 2^24).
struct HostArray {
  std::vector<int64_t> shape;
  std::vector<float> data;

  HostArray() = default;
  explicit HostArray(std::vector<int64_t> s)
      : shape(std::move(s)), data(static_cast<size_t>(NumElements(shape)), 0.0f) {}
  HostArray(std::vector<int64_t> s, std::vector<float> d) : shape(std::move(s)), data(std::move(d)) {}

  int64_t numel() const { return static_cast<int64_t>(data.size()); }

  static int64_t NumElements(const std::vector<int64_t>& shape) {
    return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<int64_t>());
  }
};

// Ordered by name so that exports, checkpoints and diffs are deterministic.
using NamedArrays = std::map<std::string, HostArray>;

// Named arrays in a meaningful order (e.g. a network's layers in execution order).
using OrderedArrays = std::vector<std::pair<std::string, HostArray>>;

}  // namespace moco

#endif  // MOCO_HOST_ARRAY_H_
