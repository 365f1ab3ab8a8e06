#include "moco/pretrain/pretrain.h"

#include <memory>

#include "moco/core/status_macros.h"
#include "moco/pretrain/metrics_csv_observer.h"
#include "moco/pretrain/progress_observer.h"
#include "moco/pretrain/trainer.h"

namespace moco {

absl::StatusOr<PretrainSummary> RunPretraining(const PretrainOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<Trainer> trainer, Trainer::Create(options));
  trainer->AddObserver(std::make_unique<MetricsCsvObserver>());
  trainer->AddObserver(std::make_unique<ProgressObserver>());
  return trainer->Run();
}

}  // namespace moco
