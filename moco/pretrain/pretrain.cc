#include "moco/pretrain/pretrain.h"

#include <memory>

#include "moco/core/status_macros.h"
#include "moco/observe/observers.h"
#include "moco/observe/metrics_csv_observer.h"
#include "moco/observe/progress_observer.h"
#include "moco/pretrain/trainer.h"

namespace moco {

absl::StatusOr<PretrainSummary> RunPretraining(const PretrainOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<Trainer> trainer, Trainer::Create(options));
  // Data parallel: rank 0 alone reports (and writes the run folder).
  if (trainer->rank() != 0) return trainer->Run();
  trainer->AddObserver(std::make_unique<MetricsCsvObserver>());
  trainer->AddObserver(std::make_unique<ProgressObserver>());
  // TensorBoard event files and report.html (rank 0); after metrics.csv, which the report reads.
  ASSIGN_OR_RETURN(auto observers, observe::CreateRunObservers(trainer->run_info()));
  for (auto& observer : observers) trainer->AddObserver(std::move(observer));
  return trainer->Run();
}

}  // namespace moco
