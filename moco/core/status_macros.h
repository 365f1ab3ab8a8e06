// Status propagation helpers. Abseil 20220623 ships no status macros, so these are ours.
//
//   RETURN_IF_ERROR(WriteCheckpoint(path));
//   ASSIGN_OR_RETURN(ExperimentConfig config, LoadExperimentConfig(path));
#ifndef MOCO_CORE_STATUS_MACROS_H_
#define MOCO_CORE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define MOCO_STATUS_CONCAT_INNER_(a, b) a##b
#define MOCO_STATUS_CONCAT_(a, b) MOCO_STATUS_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                               \
  do {                                                      \
    const ::absl::Status moco_status_ = (expr);             \
    if (!moco_status_.ok()) return moco_status_;            \
  } while (0)

#define ASSIGN_OR_RETURN(lhs, rexpr) \
  MOCO_ASSIGN_OR_RETURN_IMPL_(MOCO_STATUS_CONCAT_(moco_statusor_, __LINE__), lhs, rexpr)

#define MOCO_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                \
  if (!statusor.ok()) return statusor.status();           \
  lhs = std::move(statusor).value()

#endif  // MOCO_CORE_STATUS_MACROS_H_
