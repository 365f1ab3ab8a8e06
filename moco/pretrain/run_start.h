// Where a pretraining process starts: a new run from the given config, or a resumed run from the
// run folder's latest checkpoint (whose config is the run's config).
#ifndef MOCO_PRETRAIN_RUN_START_H_
#define MOCO_PRETRAIN_RUN_START_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "moco/config/config.pb.h"
#include "moco/pretrain/pretrain.h"
#include "moco/run/checkpoint.h"

namespace moco {

struct RunStart {
  ExperimentConfig config;                // run.run_dir resolved
  std::optional<Checkpoint> checkpoint;   // set when resuming
};

// A new run refuses a run folder that already holds a checkpoint; a resumed run refuses a given
// config that differs from the checkpoint's (the differences are listed). Nothing is written.
absl::StatusOr<RunStart> ResolveRunStart(const PretrainOptions& options);

// Writes `text` to `path` through `path`.tmp and a rename.
absl::Status WriteTextFileAtomically(const std::string& path, const std::string& text);

}  // namespace moco

#endif  // MOCO_PRETRAIN_RUN_START_H_
