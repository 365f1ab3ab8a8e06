// A training method's per-step gradient average over the ranks (moco/core/gradient_averager.h),
// made by the backend on the first data-parallel step and kept for the run.
//
//   RETURN_IF_ERROR(sync_.BeforeLastBackward(backend, query, comm, bucket_bytes));
//   RETURN_IF_ERROR(query.Backward(*grad_q));
//   RETURN_IF_ERROR(sync_.Finish());
//
// World 1 (or no communicator): both calls do nothing, so the single-process step is unchanged.
#ifndef MOCO_METHODS_GRADIENT_SYNC_H_
#define MOCO_METHODS_GRADIENT_SYNC_H_

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "moco/core/backend.h"
#include "moco/core/communicator.h"
#include "moco/core/encoder.h"
#include "moco/core/gradient_averager.h"

namespace moco {

// DDP's default bucket_cap_mb (25 MiB).
inline constexpr int64_t kDefaultGradientBucketBytes = int64_t{25} << 20;

class GradientSync {
 public:
  absl::Status BeforeLastBackward(Backend& backend, Encoder& encoder, Communicator* comm,
                                  int64_t bucket_bytes) {
    armed_ = false;
    if (comm == nullptr || comm->world_size() == 1) return absl::OkStatus();
    if (averager_ == nullptr || comm != comm_ || &encoder != encoder_) {
      averager_.reset();
      absl::StatusOr<std::unique_ptr<GradientAverager>> made =
          backend.CreateGradientAverager(encoder, *comm, bucket_bytes);
      if (!made.ok()) return made.status();
      averager_ = std::move(*made);
      comm_ = comm;
      encoder_ = &encoder;
    }
    absl::Status status = averager_->BeforeLastBackward();
    armed_ = status.ok();
    return status;
  }

  // After the step's last Backward; nothing to do unless BeforeLastBackward armed it.
  absl::Status Finish() {
    if (!armed_) return absl::OkStatus();
    armed_ = false;
    return averager_->Finish();
  }

 private:
  std::unique_ptr<GradientAverager> averager_;
  Communicator* comm_ = nullptr;
  const Encoder* encoder_ = nullptr;
  bool armed_ = false;
};

}  // namespace moco

#endif  // MOCO_METHODS_GRADIENT_SYNC_H_
