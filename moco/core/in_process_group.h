// Tests only: W ranks as W threads of one process, for code whose collectives are host
// all-reduces (SyncBatchNorm). Each thread gets a Communicator for its rank; AllReduceSumHost
// blocks until every rank has called it, then gives every rank the same sum (added in rank
// order, so bit-identical everywhere). Tensor collectives return Unimplemented.
//
//   InProcessGroup group(2);
//   RunOnRanks(group, [&](Communicator& comm) { ... SyncBatchNormTrain(x[comm.rank()], ...) });
#ifndef MOCO_CORE_IN_PROCESS_GROUP_H_
#define MOCO_CORE_IN_PROCESS_GROUP_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/types/span.h"
#include "moco/core/communicator.h"

namespace moco {

class InProcessGroup {
 public:
  explicit InProcessGroup(int world_size);
  int world_size() const { return world_size_; }

  // Rank `rank`'s endpoint (owned by the caller; the group must outlive it).
  std::unique_ptr<Communicator> Endpoint(int rank);

  // Blocks until all ranks call it; then `values` holds the element-wise sum over the ranks.
  // Every rank must pass the same length (checked: a mismatch aborts the test).
  void AllReduceSum(int rank, absl::Span<double> values);

 private:
  void Barrier();

  const int world_size_;
  std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0;
  int64_t generation_ = 0;
  std::vector<std::vector<double>> slots_;
};

// Runs fn(rank's communicator) on one thread per rank and joins them.
void RunOnRanks(InProcessGroup& group, const std::function<void(Communicator&)>& fn);

}  // namespace moco

#endif  // MOCO_CORE_IN_PROCESS_GROUP_H_
