// Test helper: a tiny deterministic "run" driven through metrics.csv (moco/run/metrics_log.h)
// and CreateRunObservers, as the Trainer would drive them, without training anything.
#ifndef MOCO_OBSERVE_SYNTHETIC_RUN_H_
#define MOCO_OBSERVE_SYNTHETIC_RUN_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace moco {
namespace observe {

struct SyntheticRun {
  std::string run_dir;
  int epochs = 3;
  int steps_per_epoch = 20;
  int log_every = 5;
  int64_t start_step = 0;   // > 0: a resume from a checkpoint at that step
  int64_t stop_at = 0;      // > 0: stop after this step (a "crash" leaves no RunEnd when crash)
  bool crash = false;       // with stop_at: no OnRunEnd, as if the process died
  bool learning = true;     // false: flat loss, kNN at the random-init level
  double random_init = 40;  // reported at the run's end
};

// The loss, contrastive top-1 and kNN the synthetic run logs.
double SyntheticLoss(const SyntheticRun& run, int64_t step);
double SyntheticKnn(const SyntheticRun& run, int64_t epochs_done);

absl::Status DriveSyntheticRun(const SyntheticRun& run);

}  // namespace observe
}  // namespace moco

#endif  // MOCO_OBSERVE_SYNTHETIC_RUN_H_
