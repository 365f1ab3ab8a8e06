// The MoCo dictionary: a FIFO queue of K L2-normalized keys from previous batches, the negatives
// of the contrastive loss. Held by the backend (on the device for CUDA).
#ifndef MOCO_CORE_KEY_QUEUE_H_
#define MOCO_CORE_KEY_QUEUE_H_

#include <cstdint>

#include "absl/status/status.h"
#include "moco/core/host_array.h"
#include "moco/core/tensor.h"

namespace moco {

class KeyQueue {
 public:
  virtual ~KeyQueue() = default;

  // (K, dim): row i is a key. Initially random unit vectors (as the official code).
  virtual const Tensor& keys() const = 0;
  // Row where the next Enqueue starts writing.
  virtual int64_t pointer() const = 0;
  // Overwrites the N oldest rows [pointer, pointer + N) with `keys` (N, dim) and advances the
  // pointer by N modulo K. K must be a multiple of N (the config validator ensures it).
  virtual absl::Status Enqueue(const Tensor& keys) = 0;

  // {"queue": (K, dim), "queue_ptr": (1)}; Import checks names and shapes.
  virtual NamedArrays ExportState() const = 0;
  virtual absl::Status ImportState(const NamedArrays& state) = 0;
};

}  // namespace moco

#endif  // MOCO_CORE_KEY_QUEUE_H_
