#include "tests/spawn_ranks.h"

#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"

extern char** environ;

namespace moco::testing {

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

pid_t SpawnRank(int rank, int world, int port, const std::vector<std::string>& extra_env) {
  std::vector<std::string> env_strings = {
      absl::StrCat("RANK=", rank),        absl::StrCat("WORLD_SIZE=", world),
      absl::StrCat("LOCAL_RANK=", rank),  absl::StrCat("LOCAL_WORLD_SIZE=", world),
      "MASTER_ADDR=127.0.0.1",            absl::StrCat("MASTER_PORT=", port)};
  env_strings.insert(env_strings.end(), extra_env.begin(), extra_env.end());
  for (char** e = environ; *e != nullptr; ++e) env_strings.push_back(*e);
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  char self[] = "/proc/self/exe";
  char* argv[] = {self, nullptr};
  pid_t pid = 0;
  if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv, envp.data()) != 0) return -1;
  return pid;
}

int WaitExit(pid_t pid, int limit_s) {
  if (pid <= 0) return -1;
  int status = 0;
  for (int i = 0; i < limit_s * 10; ++i) {
    if (waitpid(pid, &status, WNOHANG) == pid) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    usleep(100000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -1;
}

std::vector<int> RunRanks(int world, const std::vector<std::string>& extra_env, int limit_s) {
  const int port = FreePort();
  std::vector<pid_t> pids;
  for (int r = 0; r < world; ++r) pids.push_back(SpawnRank(r, world, port, extra_env));
  std::vector<int> codes;
  for (pid_t pid : pids) codes.push_back(WaitExit(pid, limit_s));
  return codes;
}

}  // namespace moco::testing
