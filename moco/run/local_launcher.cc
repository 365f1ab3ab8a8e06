#include "moco/run/local_launcher.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

extern char** environ;

namespace moco {
namespace {

constexpr int kExitStopped = 75;  // kExitStoppedResumable (moco/run/pipeline_main.h)
constexpr char kLauncherVariable[] = "MOCO_LOCAL_LAUNCHER";

std::atomic<int> pending_sigint{0};
std::atomic<int> pending_sigterm{0};

void OnSignal(int signo) {
  if (signo == SIGINT) pending_sigint.fetch_add(1);
  if (signo == SIGTERM) pending_sigterm.fetch_add(1);
}

// Installs OnSignal for SIGINT and SIGTERM for its lifetime.
class ForwardingHandlers {
 public:
  ForwardingHandlers() {
    pending_sigint = 0;
    pending_sigterm = 0;
    struct sigaction action {};
    action.sa_handler = OnSignal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &old_int_);
    sigaction(SIGTERM, &action, &old_term_);
  }
  ~ForwardingHandlers() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

absl::StatusOr<int> FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::UnavailableError("cannot open a socket to find a free MASTER_PORT");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  close(fd);
  if (!ok) return absl::UnavailableError("cannot bind a loopback socket to find a free MASTER_PORT");
  return static_cast<int>(ntohs(addr.sin_port));
}

bool IsContractVariable(const char* entry) {
  for (const char* name : {"RANK=", "WORLD_SIZE=", "LOCAL_RANK=", "LOCAL_WORLD_SIZE=",
                           "MASTER_ADDR=", "MASTER_PORT=", "MOCO_LOCAL_LAUNCHER="}) {
    if (std::strncmp(entry, name, std::strlen(name)) == 0) return true;
  }
  return false;
}

std::vector<std::string> RankEnvironment(const LaunchOptions& options, int rank, int port) {
  std::vector<std::string> env = {
      absl::StrCat("RANK=", rank),
      absl::StrCat("WORLD_SIZE=", options.nproc),
      absl::StrCat("LOCAL_RANK=", rank),
      absl::StrCat("LOCAL_WORLD_SIZE=", options.nproc),
      absl::StrCat("MASTER_ADDR=", options.master_addr),
      absl::StrCat("MASTER_PORT=", port),
      absl::StrCat(kLauncherVariable, "=1")};
  env.insert(env.end(), options.extra_env.begin(), options.extra_env.end());
  for (char** e = environ; *e != nullptr; ++e) {
    if (!IsContractVariable(*e)) env.push_back(*e);
  }
  return env;
}

// fork + exec in a new process group, dying with the launcher. -1 when it cannot start.
pid_t StartRank(const std::vector<std::string>& argv_strings,
                const std::vector<std::string>& env_strings) {
  std::vector<char*> argv, envp;
  for (const std::string& s : argv_strings) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);
  for (const std::string& s : env_strings) envp.push_back(const_cast<char*>(s.c_str()));
  envp.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid != 0) return pid;
  // The child: async-signal-safe calls only until exec.
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGINT, &dfl, nullptr);
  sigaction(SIGTERM, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  execve(argv[0], argv.data(), envp.data());
  _exit(127);
}

std::string Describe(int code) {
  if (code >= 128) return absl::StrCat("was killed by signal ", code - 128, " (", strsignal(code - 128), ")");
  return absl::StrCat("exited with code ", code);
}

}  // namespace

bool StartedByLocalLauncher() {
  const char* v = std::getenv(kLauncherVariable);
  return v != nullptr && std::strcmp(v, "1") == 0;
}

absl::StatusOr<LaunchResult> LaunchLocalRanks(const LaunchOptions& options) {
  if (options.nproc < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--nproc_per_node (", options.nproc, ") must be >= 1"));
  }
  if (options.argv.empty()) return absl::InvalidArgumentError("launcher: no command to run");
  int port = options.master_port;
  if (port == 0) {
    absl::StatusOr<int> free_port = FreeLoopbackPort();
    if (!free_port.ok()) return free_port.status();
    port = *free_port;
  }
  ForwardingHandlers handlers;
  const int n = options.nproc;
  std::vector<pid_t> pids(n, -1);
  LaunchResult result;
  result.rank_exit_codes.assign(n, -1);
  for (int r = 0; r < n; ++r) {
    pids[r] = StartRank(options.argv, RankEnvironment(options, r, port));
    if (pids[r] < 0) {
      for (int s = 0; s < r; ++s) kill(pids[s], SIGKILL);
      for (int s = 0; s < r; ++s) waitpid(pids[s], nullptr, 0);
      return absl::UnavailableError(
          absl::StrCat("launcher: cannot start rank ", r, ": ", std::strerror(errno)));
    }
  }
  std::fprintf(stderr, "launcher: started %d ranks of %s on %s:%d\n", n, options.argv[0].c_str(),
               options.master_addr.c_str(), port);
  using Clock = std::chrono::steady_clock;
  Clock::time_point kill_at = Clock::time_point::max();
  int live = n;
  bool killed = false;
  while (live > 0) {
    // Forward every signal the launcher got, once, to the ranks still running.
    for (auto [counter, signo] : {std::pair{&pending_sigint, SIGINT}, {&pending_sigterm, SIGTERM}}) {
      for (int k = counter->exchange(0); k > 0; --k) {
        for (int r = 0; r < n; ++r) {
          if (result.rank_exit_codes[r] < 0) kill(pids[r], signo);
        }
      }
    }
    for (int r = 0; r < n; ++r) {
      if (result.rank_exit_codes[r] >= 0) continue;
      int status = 0;
      if (waitpid(pids[r], &status, WNOHANG) != pids[r]) continue;
      const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      result.rank_exit_codes[r] = code;
      --live;
      const bool failed = code != 0 && code != kExitStopped;
      if (failed && result.failed_rank < 0 && !killed) {
        result.failed_rank = r;
        result.exit_code = code >= 128 ? 1 : code;
        result.message = absl::StrCat("rank ", r, " of ", n, " ", Describe(code),
                                      code >= 128 ? "" : " (its error is above)",
                                      "; stopping the other ranks");
        std::fprintf(stderr, "launcher: %s\n", result.message.c_str());
        for (int s = 0; s < n; ++s) {
          if (result.rank_exit_codes[s] < 0) kill(pids[s], SIGTERM);
        }
        kill_at = Clock::now() + std::chrono::seconds(options.grace_seconds);
      }
    }
    if (live > 0 && Clock::now() >= kill_at && !killed) {
      killed = true;
      for (int r = 0; r < n; ++r) {
        if (result.rank_exit_codes[r] < 0) {
          std::fprintf(stderr, "launcher: rank %d did not exit within %d s; killing it\n", r,
                       options.grace_seconds);
          kill(pids[r], SIGKILL);
        }
      }
    }
    if (live > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (result.failed_rank >= 0) return result;
  bool all_stopped = true, any_stopped = false;
  for (int code : result.rank_exit_codes) {
    all_stopped = all_stopped && code == kExitStopped;
    any_stopped = any_stopped || code == kExitStopped;
  }
  if (all_stopped) {
    result.exit_code = kExitStopped;
    result.message = absl::StrCat("all ", n, " ranks stopped early with a checkpoint");
  } else if (any_stopped) {
    // Some finished, some stopped: the ranks disagree, which the run's stop agreement forbids.
    result.exit_code = 1;
    result.message = "the ranks ended differently (some finished, some stopped early)";
  } else {
    result.message = absl::StrCat("all ", n, " ranks finished");
  }
  return result;
}

}  // namespace moco
