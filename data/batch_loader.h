// The threaded batch loader: shuffled, augmented, multi-view float32 NCHW batches.
//
//   ASSIGN_OR_RETURN(auto loader, BatchLoader::Create(dataset, transform, options));
//   for (int64_t epoch = start; epoch < epochs; ++epoch) {
//     RETURN_IF_ERROR(loader->StartEpoch(epoch));
//     while (true) {
//       ASSIGN_OR_RETURN(std::optional<HostBatch> batch, loader->Next());
//       if (!batch) break;
//       Train(batch->views[0], batch->views[1]);      // query and key views, {N, C, H, W}
//       loader->Recycle(std::move(*batch));             // optional: reuse its buffers
//     }
//   }
//
// Determinism: epoch e's order is a permutation drawn from (seed, e); the augmentation of
// view v of dataset image i in epoch e draws from SampleRng(seed, e, i, v) (data/random.h).
// Nothing depends on thread timing, so any num_workers gives identical batches, and a run
// resumed at epoch 7 gets exactly the batches an uninterrupted run would have.
//
// Data parallelism (DistributedSampler semantics, drop_last): batch_size is the GLOBAL batch and
// every rank draws the same epoch permutation from (seed, epoch). Rank r of W takes the
// contiguous block [r * b, (r + 1) * b), b = batch_size / W, of every global batch. So the data
// order of world W is the data order of world 1 regrouped: global batch k of world 1 is the
// concatenation, in rank order, of batch k of ranks 0..W-1 -- same images, same augmentations
// (the augmentation streams depend on the dataset index, never on the rank), same SKIP
// replacements (the next readable image in the global order).
#ifndef DATA_BATCH_LOADER_H_
#define DATA_BATCH_LOADER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "data/dataset_interface.h"
#include "data/transform.h"
#include "moco/config/config.pb.h"
#include "moco/core/host_array.h"

namespace moco {
namespace data {

struct HostBatch {
  std::vector<moco::HostArray> views;  // num_views arrays, each {N, C, H, W} float32, contiguous
  std::vector<int64_t> labels;         // N
  std::vector<int64_t> indices;        // N dataset indices
};

struct LoaderOptions {
  // The global batch: each rank's batches hold batch_size / world_size images.
  int batch_size = 256;
  // This process's share of the data (see the header comment): rank in [0, world_size);
  // world_size must divide batch_size, and world_size > 1 requires drop_last.
  int rank = 0;
  int world_size = 1;
  // Worker threads; 0 produces batches on the calling thread inside Next().
  int num_workers = 2;
  // Batches produced ahead of the consumer (bounded; >= 1).
  int prefetch_batches = 4;
  bool shuffle = true;
  // Drop the last partial batch (otherwise it is returned with fewer than batch_size images).
  bool drop_last = true;
  // Augmented views per image; 2 = MoCo's TwoCropsTransform (query and key).
  int num_views = 2;
  uint64_t seed = 0;
  int64_t max_batches_per_epoch = 0;  // 0 = full epoch
  moco::DataConfig::CorruptImagePolicy on_corrupt_image = moco::DataConfig::FAIL;
};

// Options from an experiment's data section: num_workers, prefetch_batches, on_corrupt_image
// from `data`; batch size, seed and batches-per-epoch cap as given (run.batch_size, run.seed,
// run.max_steps_per_epoch).
LoaderOptions LoaderOptionsFromConfig(const DataConfig& data, int batch_size, uint64_t seed,
                                      int64_t max_batches_per_epoch);

class BatchLoader {
 public:
  // Validates the options (errors name the option) and starts the workers; they idle until
  // StartEpoch. An epoch with no full batch under drop_last is an error.
  static absl::StatusOr<std::unique_ptr<BatchLoader>> Create(std::shared_ptr<const Dataset> dataset,
                                                             std::shared_ptr<const Transform> transform,
                                                             LoaderOptions options);
  // Stops and joins the workers (an in-flight batch is abandoned); never blocks on the consumer.
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // Global batches per epoch (the same on every rank).
  int64_t batches_per_epoch() const { return batches_per_epoch_; }
  // Images per batch this rank gets: batch_size / world_size (a last partial batch may be
  // smaller in world 1 without drop_last).
  int local_batch_size() const { return options_.batch_size / options_.world_size; }

  // Starts producing epoch `epoch` (any number, >= 0), abandoning what remains of the current
  // one. Order = f(seed, epoch).
  absl::Status StartEpoch(int64_t epoch);

  // The next batch of the current epoch, std::nullopt after the last. A corrupt image under
  // FAIL comes back as an error naming the file (and every later call in the epoch returns it
  // too). Under SKIP a corrupt image is replaced by the next readable image in the epoch's order
  // (deterministic), counted, and reported with LOG(WARNING) at the end of the epoch.
  absl::StatusOr<std::optional<HostBatch>> Next();

  // Corrupt images skipped (SKIP policy) in the batches returned so far this epoch.
  int64_t skipped_in_epoch() const;

  // Hands a consumed batch's buffers back for reuse (optional; avoids reallocating them).
  void Recycle(HostBatch batch);

 private:
  struct Produced {
    absl::StatusOr<HostBatch> batch;
    int64_t skipped = 0;
  };

  BatchLoader(std::shared_ptr<const Dataset> dataset, std::shared_ptr<const Transform> transform,
              LoaderOptions options, int64_t batches_per_epoch);
  void WorkerLoop();
  // Builds batch `b` of `epoch` from `perm`. Thread-safe.
  // Gives up early (an error result) when the generation moves on or the loader stops.
  Produced Produce(const std::vector<int64_t>& perm, int64_t epoch, int64_t b,
                   uint64_t generation);
  HostBatch TakeBuffers(int64_t n);

  const std::shared_ptr<const Dataset> dataset_;
  const std::shared_ptr<const Transform> transform_;
  const LoaderOptions options_;
  const int64_t batches_per_epoch_;
  const int64_t sample_floats_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;   // workers wait for claimable batches
  std::condition_variable ready_cv_;  // the consumer waits for its batch
  bool stop_ = false;
  bool started_ = false;
  uint64_t generation_ = 0;  // bumped by StartEpoch; stale results are dropped
  int64_t epoch_ = 0;
  std::shared_ptr<const std::vector<int64_t>> perm_;
  int64_t next_claim_ = 0;
  int64_t next_return_ = 0;
  std::map<int64_t, Produced> ready_;
  absl::Status failed_;
  int64_t skipped_ = 0;
  bool end_reported_ = false;
  std::vector<HostBatch> pool_;  // recycled buffers
  std::atomic<uint64_t> live_generation_{0};  // generation_, readable without mu_
  std::atomic<bool> abort_{false};
  std::vector<std::thread> workers_;
};

}  // namespace data
}  // namespace moco

#endif  // DATA_BATCH_LOADER_H_
