// Test helper: re-executes the running test binary as the ranks of a data-parallel group on
// loopback (torchrun's variables: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT, plus the caller's own), and waits for them with a hang guard.
//
//   if (getenv("MY_TEST_WORKER")) return Worker();               // in main()
//   std::vector<int> codes = RunRanks(2, {"MY_TEST_WORKER=1"}, /*limit_s=*/120);
#ifndef TESTS_SPAWN_RANKS_H_
#define TESTS_SPAWN_RANKS_H_

#include <sys/types.h>

#include <string>
#include <vector>

namespace moco::testing {

// A loopback TCP port that was free a moment ago.
int FreePort();

// Starts /proc/self/exe (no arguments) as rank `rank` of `world` with `extra_env` ("K=V") and
// the current environment; -1 when it cannot be started.
pid_t SpawnRank(int rank, int world, int port, const std::vector<std::string>& extra_env);

// Exit code of `pid` (128 + signal when killed); SIGKILLs it and returns -1 after `limit_s`
// (a hang guard, not a timing assertion).
int WaitExit(pid_t pid, int limit_s);

// All ranks of a world on a fresh port; their exit codes in rank order.
std::vector<int> RunRanks(int world, const std::vector<std::string>& extra_env, int limit_s);

}  // namespace moco::testing

#endif  // TESTS_SPAWN_RANKS_H_
