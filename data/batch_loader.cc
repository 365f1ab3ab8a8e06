#include "data/batch_loader.h"

#include <algorithm>
#include <numeric>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "data/random.h"
#include "glog/logging.h"

namespace moco {
namespace data {

LoaderOptions LoaderOptionsFromConfig(const DataConfig& data, int batch_size, uint64_t seed,
                                      int64_t max_batches_per_epoch) {
  LoaderOptions o;
  o.batch_size = batch_size;
  o.num_workers = data.num_workers();
  o.prefetch_batches = data.prefetch_batches();
  o.on_corrupt_image = data.on_corrupt_image();
  o.seed = seed;
  o.max_batches_per_epoch = max_batches_per_epoch;
  return o;
}

absl::StatusOr<std::unique_ptr<BatchLoader>> BatchLoader::Create(
    std::shared_ptr<const Dataset> dataset, std::shared_ptr<const Transform> transform,
    LoaderOptions options) {
  if (dataset == nullptr) return absl::InvalidArgumentError("BatchLoader: null dataset");
  if (transform == nullptr) return absl::InvalidArgumentError("BatchLoader: null transform");
  auto bad = [](const char* name, int64_t v, const char* rule) {
    return absl::InvalidArgumentError(absl::StrCat("loader option ", name, " (", v, ") ", rule));
  };
  if (options.batch_size < 1) return bad("batch_size", options.batch_size, "must be >= 1");
  if (options.num_workers < 0) return bad("num_workers", options.num_workers, "must be >= 0");
  if (options.prefetch_batches < 1) {
    return bad("prefetch_batches", options.prefetch_batches, "must be >= 1");
  }
  if (options.num_views < 1) return bad("num_views", options.num_views, "must be >= 1");
  if (options.max_batches_per_epoch < 0) {
    return bad("max_batches_per_epoch", options.max_batches_per_epoch, "must be >= 0");
  }
  if (options.world_size < 1) return bad("world_size", options.world_size, "must be >= 1");
  if (options.rank < 0 || options.rank >= options.world_size) {
    return absl::InvalidArgumentError(absl::StrCat("loader option rank (", options.rank,
                                                   ") must be in [0, world_size (",
                                                   options.world_size, "))"));
  }
  if (options.batch_size % options.world_size != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "loader option batch_size (", options.batch_size, ") is the global batch and must be a "
        "multiple of world_size (", options.world_size, ")"));
  }
  if (options.world_size > 1 && !options.drop_last) {
    return absl::InvalidArgumentError(absl::StrCat(
        "loader option drop_last must be set with world_size (", options.world_size,
        ") > 1: every rank needs a full share of every batch"));
  }
  const int64_t n = dataset->size();
  int64_t batches = options.drop_last ? n / options.batch_size
                                      : (n + options.batch_size - 1) / options.batch_size;
  if (batches == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("dataset (", n > 0 ? dataset->Describe(0) : std::string("empty"), ", ...) has ",
                     n, " images, fewer than one batch of ", options.batch_size,
                     options.drop_last ? " with drop_last" : ""));
  }
  if (options.max_batches_per_epoch > 0) {
    batches = std::min(batches, options.max_batches_per_epoch);
  }
  return std::unique_ptr<BatchLoader>(
      new BatchLoader(std::move(dataset), std::move(transform), options, batches));
}

BatchLoader::BatchLoader(std::shared_ptr<const Dataset> dataset,
                         std::shared_ptr<const Transform> transform, LoaderOptions options,
                         int64_t batches_per_epoch)
    : dataset_(std::move(dataset)),
      transform_(std::move(transform)),
      options_(options),
      batches_per_epoch_(batches_per_epoch),
      sample_floats_(static_cast<int64_t>(transform_->out_channels()) * transform_->out_height() *
                     transform_->out_width()) {
  for (int i = 0; i < options_.num_workers; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    abort_ = true;
  }
  work_cv_.notify_all();
  ready_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

absl::Status BatchLoader::StartEpoch(int64_t epoch) {
  if (epoch < 0) return absl::InvalidArgumentError(absl::StrCat("epoch (", epoch, ") must be >= 0"));
  auto perm = std::make_shared<std::vector<int64_t>>(static_cast<size_t>(dataset_->size()));
  std::iota(perm->begin(), perm->end(), int64_t{0});
  if (options_.shuffle) {
    std::mt19937_64 rng = EpochRng(options_.seed, epoch);
    for (size_t i = perm->size() - 1; i > 0; --i) {
      std::swap((*perm)[i], (*perm)[UniformIndex(rng, i + 1)]);
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++generation_;
    live_generation_ = generation_;
    epoch_ = epoch;
    perm_ = std::move(perm);
    next_claim_ = 0;
    next_return_ = 0;
    ready_.clear();
    failed_ = absl::OkStatus();
    skipped_ = 0;
    end_reported_ = false;
    started_ = true;
  }
  work_cv_.notify_all();
  return absl::OkStatus();
}

void BatchLoader::WorkerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    work_cv_.wait(lock, [this] {
      return stop_ || (started_ && next_claim_ < batches_per_epoch_ &&
                       next_claim_ < next_return_ + options_.prefetch_batches);
    });
    if (stop_) return;
    const int64_t b = next_claim_++;
    const uint64_t generation = generation_;
    const int64_t epoch = epoch_;
    std::shared_ptr<const std::vector<int64_t>> perm = perm_;
    lock.unlock();
    Produced produced = Produce(*perm, epoch, b, generation);
    lock.lock();
    if (generation == generation_) {
      ready_.emplace(b, std::move(produced));
      ready_cv_.notify_all();
    } else if (produced.batch.ok()) {
      pool_.push_back(*std::move(produced.batch));
    }
  }
}

HostBatch BatchLoader::TakeBuffers(int64_t n) {
  HostBatch batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!pool_.empty()) {
      batch = std::move(pool_.back());
      pool_.pop_back();
    }
  }
  const std::vector<int64_t> shape = {n, transform_->out_channels(), transform_->out_height(),
                                      transform_->out_width()};
  batch.views.resize(options_.num_views);
  for (HostArray& v : batch.views) {
    v.Reshape(shape);  // keeps the allocation when recycled
  }
  batch.labels.resize(n);
  batch.indices.resize(n);
  return batch;
}

BatchLoader::Produced BatchLoader::Produce(const std::vector<int64_t>& perm, int64_t epoch,
                                           int64_t b, uint64_t generation) {
  Produced result{absl::UnknownError("unset")};
  const int64_t n_total = static_cast<int64_t>(perm.size());
  // This rank's contiguous block of global batch b (the whole batch in world 1).
  const int64_t local = options_.batch_size / options_.world_size;
  const int64_t first = b * options_.batch_size + options_.rank * local;
  const int64_t n = std::min<int64_t>(local, n_total - first);
  HostBatch batch = TakeBuffers(n);
  thread_local Image image;
  for (int64_t i = 0; i < n; ++i) {
    if (abort_ || live_generation_ != generation) {
      result.batch = absl::CancelledError("batch abandoned");
      return result;
    }
    int64_t pos = first + i;
    int64_t index = perm[pos];
    absl::Status status;
    for (int64_t attempt = 0;; ++attempt) {
      status = dataset_->ReadImage(index, &image);
      if (status.ok() && (image.height <= 0 || image.width <= 0 ||
                          (image.channels != 1 && image.channels != 3) ||
                          image.pixels.size() != image.num_values())) {
        status = absl::DataLossError(absl::StrCat(dataset_->Describe(index), ": invalid image (",
                                                  image.height, "x", image.width, "x",
                                                  image.channels, ")"));
      }
      if (status.ok()) break;
      if (!absl::StrContains(status.message(), dataset_->Describe(index))) {
        status = absl::Status(status.code(),
                              absl::StrCat(dataset_->Describe(index), ": ", status.message()));
      }
      if (options_.on_corrupt_image == DataConfig::FAIL) {
        result.batch = status;
        return result;
      }
      if (attempt == 0) {
        ++result.skipped;
        LOG(WARNING) << "skipping corrupt image: " << status.message();
      }
      if (attempt + 1 >= n_total) {
        result.batch = absl::DataLossError(
            absl::StrCat("every image failed to load; last: ", status.message()));
        return result;
      }
      pos = (pos + 1) % n_total;
      index = perm[pos];
    }
    batch.labels[i] = dataset_->label(index);
    batch.indices[i] = index;
    for (int v = 0; v < options_.num_views; ++v) {
      std::mt19937_64 rng = SampleRng(options_.seed, epoch, index, v);
      transform_->ApplyView(v, image, rng,
                            batch.views[v].mutable_data().data() + i * sample_floats_);
    }
  }
  result.batch = std::move(batch);
  return result;
}

absl::StatusOr<std::optional<HostBatch>> BatchLoader::Next() {
  std::unique_lock<std::mutex> lock(mu_);
  if (!started_) return absl::FailedPreconditionError("BatchLoader::Next before StartEpoch");
  if (!failed_.ok()) return failed_;
  if (next_return_ >= batches_per_epoch_) {
    if (!end_reported_) {
      end_reported_ = true;
      if (skipped_ > 0) {
        LOG(WARNING) << "epoch " << epoch_ << ": skipped " << skipped_
                     << " corrupt image(s), each replaced by the next readable image in the "
                        "epoch's order";
      }
    }
    return std::optional<HostBatch>();
  }
  const int64_t b = next_return_;
  Produced produced{absl::UnknownError("unset")};
  if (workers_.empty()) {
    const uint64_t generation = generation_;
    std::shared_ptr<const std::vector<int64_t>> perm = perm_;
    const int64_t epoch = epoch_;
    lock.unlock();
    produced = Produce(*perm, epoch, b, generation);
    lock.lock();
  } else {
    ready_cv_.wait(lock, [&] { return stop_ || ready_.count(b) > 0; });
    if (stop_) return absl::CancelledError("BatchLoader destroyed");
    auto it = ready_.find(b);
    produced = std::move(it->second);
    ready_.erase(it);
  }
  ++next_return_;
  lock.unlock();
  work_cv_.notify_all();
  lock.lock();
  if (!produced.batch.ok()) {
    failed_ = produced.batch.status();
    return failed_;
  }
  skipped_ += produced.skipped;
  return std::optional<HostBatch>(*std::move(produced.batch));
}

int64_t BatchLoader::skipped_in_epoch() const {
  std::lock_guard<std::mutex> lock(mu_);
  return skipped_;
}

void BatchLoader::Recycle(HostBatch batch) {
  std::lock_guard<std::mutex> lock(mu_);
  if (pool_.size() < static_cast<size_t>(options_.num_workers + options_.prefetch_batches + 2)) {
    pool_.push_back(std::move(batch));
  }
}

}  // namespace data
}  // namespace moco
