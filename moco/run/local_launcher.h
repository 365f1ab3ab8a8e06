// The built-in local launcher of data-parallel runs (`pretrain --nproc_per_node=N`): starts N
// copies of a command as ranks 0..N-1 of one machine with torchrun's environment contract
// (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT, plus
// MOCO_LOCAL_LAUNCHER=1), supervises them and tears them down:
//   - a rank that fails (exit code other than 0 and 75, or a signal) is named on stderr, the
//     others get SIGTERM at once and SIGKILL after `grace_seconds`; the launcher returns that
//     rank's code (1 for a signal);
//   - SIGINT or SIGTERM to the launcher is forwarded once per arrival to every rank (the ranks
//     run in their own process group, so a Ctrl-C reaches them only through the launcher: once,
//     and they finish the step and checkpoint; a second Ctrl-C kills them as it would one
//     process);
//   - the ranks die with the launcher (PR_SET_PDEATHSIG).
//
//   LaunchOptions options;
//   options.nproc = 2;
//   options.argv = {"/proc/self/exe", "--config=configs/quickstart.pbtxt"};
//   ASSIGN_OR_RETURN(LaunchResult result, LaunchLocalRanks(options));
//   return result.exit_code;   // 0 all finished, 75 all stopped resumably, else the failure's
#ifndef MOCO_RUN_LOCAL_LAUNCHER_H_
#define MOCO_RUN_LOCAL_LAUNCHER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace moco {

struct LaunchOptions {
  int nproc = 2;
  std::string master_addr = "127.0.0.1";
  int master_port = 0;  // 0: a port free when the launcher starts
  // The command every rank runs: argv[0] is the program's path.
  std::vector<std::string> argv;
  // "NAME=value" entries added to every rank's environment.
  std::vector<std::string> extra_env;
  // After the first failure, how long the other ranks get to exit before SIGKILL.
  int grace_seconds = 10;
};

struct LaunchResult {
  int exit_code = 0;     // 0, 75 (every rank stopped resumably), or the first failure's code
  int failed_rank = -1;  // the first rank that failed, -1 if none
  std::vector<int> rank_exit_codes;  // 128 + signal for a rank killed by a signal
  std::string message;   // one line: what happened
};

// Errors: bad options, or a rank that cannot be started (the others are then stopped).
absl::StatusOr<LaunchResult> LaunchLocalRanks(const LaunchOptions& options);

// True in a process started by LaunchLocalRanks.
bool StartedByLocalLauncher();

}  // namespace moco

#endif  // MOCO_RUN_LOCAL_LAUNCHER_H_
