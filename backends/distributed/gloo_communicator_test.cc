// Two real processes over loopback: this binary re-executes itself as rank 0 and rank 1
// (MOCO_GLOO_TEST_WORKER=1 plus torchrun's variables), and each rank checks all-reduce,
// all-gather and broadcast results on torch and Eigen tensors against the values every rank
// can compute. Plus the rendezvous failures, in this process: MASTER_PORT taken, a rank that
// never joins.
#include "backends/distributed/gloo_communicator.h"

#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <thread>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "backends/distributed/dist_env.h"
#include "backends/eigen/eigen_tensor.h"
#include "backends/torch/torch_tensor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

extern char** environ;

namespace moco::distributed {
namespace {

using ::testing::HasSubstr;

// rank r's input: element i = 10 r + i, shape (2, 3).
HostArray RankInput(int rank) {
  HostArray a({2, 3});
  for (int i = 0; i < 6; ++i) a.mutable_data()[i] = 10.0f * rank + i;
  return a;
}

TensorPtr Make(const std::string& backend, const HostArray& a) {
  if (backend == "torch") return torch_backend::Wrap(torch_backend::FromHostArray(a, torch::kCPU));
  return eigen_backend::MakeEigenTensor(a);
}

// Returns "" or the first mismatch.
std::string Expect(const Tensor& t, const std::vector<int64_t>& shape,
                   const std::vector<float>& want, const std::string& what) {
  absl::StatusOr<HostArray> got = t.ToHost();
  if (!got.ok()) return absl::StrCat(what, ": ", got.status().ToString());
  if (got->shape() != shape) return absl::StrCat(what, ": shape ", ShapeToString(got->shape()));
  for (size_t i = 0; i < want.size(); ++i) {
    if (got->data()[i] != want[i]) {
      return absl::StrCat(what, ": element ", i, " is ", got->data()[i], ", want ", want[i]);
    }
  }
  return "";
}

std::string CheckBackend(Communicator& comm, const std::string& backend) {
  const int w = comm.world_size();
  std::vector<float> sum(6), gathered, root1(6);
  for (int i = 0; i < 6; ++i) {
    for (int r = 0; r < w; ++r) sum[i] += 10.0f * r + i;
    root1[i] = 10.0f + i;
  }
  for (int r = 0; r < w; ++r) {
    for (int i = 0; i < 6; ++i) gathered.push_back(10.0f * r + i);
  }
  std::vector<float> mean(sum);
  for (float& v : mean) v /= w;
  const std::string tag = absl::StrCat(backend, " rank ", comm.rank());

  TensorPtr t = Make(backend, RankInput(comm.rank()));
  if (absl::Status s = comm.AllReduceSum(*t); !s.ok()) return s.ToString();
  if (std::string e = Expect(*t, {2, 3}, sum, tag + " AllReduceSum"); !e.empty()) return e;
  t = Make(backend, RankInput(comm.rank()));
  if (absl::Status s = comm.AllReduceAverage(*t); !s.ok()) return s.ToString();
  if (std::string e = Expect(*t, {2, 3}, mean, tag + " AllReduceAverage"); !e.empty()) return e;
  t = Make(backend, RankInput(comm.rank()));
  absl::StatusOr<TensorPtr> all = comm.AllGather(t);
  if (!all.ok()) return all.status().ToString();
  if ((*all)->backend_name() != t->backend_name()) return tag + " AllGather: other backend";
  if (std::string e = Expect(**all, {2 * w, 3}, gathered, tag + " AllGather"); !e.empty()) {
    return e;
  }
  if (absl::Status s = comm.Broadcast(*t, 1); !s.ok()) return s.ToString();
  if (std::string e = Expect(*t, {2, 3}, root1, tag + " Broadcast"); !e.empty()) return e;
  return "";
}

int Worker() {
  absl::StatusOr<DistributedEnv> env = DistributedEnvFromEnvironment();
  if (!env.ok()) {
    std::cerr << "worker: " << env.status() << "\n";
    return 2;
  }
  GlooOptions options;
  options.timeout = std::chrono::seconds(60);
  options.rendezvous_tag = std::getenv("MOCO_GLOO_TEST_TAG");
  absl::StatusOr<std::unique_ptr<Communicator>> comm = CreateGlooCommunicator(*env, options);
  if (!comm.ok()) {
    std::cerr << "worker: " << comm.status() << "\n";
    return 2;
  }
  for (const char* backend : {"torch", "eigen"}) {
    const std::string error = CheckBackend(**comm, backend);
    if (!error.empty()) {
      std::cerr << "FAIL " << error << "\n";
      return 1;
    }
  }
  std::vector<float> host = {1.0f + (*comm)->rank(), 2.0f};
  absl::Status s = (*comm)->AllReduceSumHost(absl::MakeSpan(host));
  if (!s.ok() || host[0] != 3.0f || host[1] != 4.0f) {
    std::cerr << "FAIL AllReduceSumHost " << s << " " << host[0] << "\n";
    return 1;
  }
  absl::StatusOr<std::vector<int64_t>> ids = (*comm)->AllGatherHost(100 + (*comm)->rank());
  if (!ids.ok() || *ids != std::vector<int64_t>({100, 101})) {
    std::cerr << "FAIL AllGatherHost " << ids.status() << "\n";
    return 1;
  }
  if (absl::Status b = (*comm)->Barrier(); !b.ok()) {
    std::cerr << "FAIL Barrier " << b << "\n";
    return 1;
  }
  return 0;
}

// A port that was free a moment ago (bound to port 0 and released).
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

DistributedEnv TwoRanks(int rank, int port) {
  DistributedEnv env;
  env.rank = rank;
  env.world_size = 2;
  env.local_rank = rank;
  env.local_world_size = 2;
  env.master_addr = "127.0.0.1";
  env.master_port = port;
  return env;
}

pid_t SpawnRank(int rank, int port, const std::string& tag) {
  std::vector<std::string> env_strings = {
      "MOCO_GLOO_TEST_WORKER=1", absl::StrCat("RANK=", rank), "WORLD_SIZE=2",
      absl::StrCat("LOCAL_RANK=", rank), "LOCAL_WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1",
      absl::StrCat("MASTER_PORT=", port), absl::StrCat("MOCO_GLOO_TEST_TAG=", tag)};
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

// Exit code of `pid`; kills it after `limit_s` (a hang guard, not a timing assertion).
int WaitExit(pid_t pid, int limit_s) {
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

TEST(GlooCommunicatorTest, TwoProcessesAllReduceGatherBroadcastOnBothBackends) {
  const int port = FreePort();
  const pid_t r0 = SpawnRank(0, port, "same");
  const pid_t r1 = SpawnRank(1, port, "same");
  ASSERT_GT(r0, 0);
  ASSERT_GT(r1, 0);
  EXPECT_EQ(WaitExit(r0, 120), 0) << "rank 0 (its stderr is above)";
  EXPECT_EQ(WaitExit(r1, 120), 0) << "rank 1 (its stderr is above)";
}

TEST(GlooCommunicatorTest, TakenMasterPortIsAClearError) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  GlooOptions options;
  options.timeout = std::chrono::seconds(5);
  absl::StatusOr<std::unique_ptr<Communicator>> comm =
      CreateGlooCommunicator(TwoRanks(0, ntohs(addr.sin_port)), options);
  close(fd);
  ASSERT_FALSE(comm.ok());
  EXPECT_THAT(comm.status().message(), HasSubstr("MASTER_PORT"));
  EXPECT_THAT(comm.status().message(), HasSubstr("already in use"));
}

TEST(GlooCommunicatorTest, ARankThatNeverJoinsIsNamedAfterTheTimeout) {
  GlooOptions options;
  options.timeout = std::chrono::seconds(2);
  absl::StatusOr<std::unique_ptr<Communicator>> comm =
      CreateGlooCommunicator(TwoRanks(0, FreePort()), options);
  ASSERT_FALSE(comm.ok());
  EXPECT_EQ(comm.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(comm.status().message(), HasSubstr("rank(s) 1 of WORLD_SIZE 2 did not join"));
}

// Both ranks in this process (one on a thread): each is refused, naming what differs.
TEST(GlooCommunicatorTest, RanksWithAnotherConfigOrWorldSizeAreRefused) {
  for (const bool other_world : {false, true}) {
    const int port = FreePort();
    GlooOptions a, b;
    a.timeout = b.timeout = std::chrono::seconds(3);
    a.rendezvous_tag = "hash-a";
    b.rendezvous_tag = other_world ? "hash-a" : "hash-b";
    DistributedEnv env1 = TwoRanks(1, port);
    if (other_world) env1.world_size = 3;
    absl::StatusOr<std::unique_ptr<Communicator>> rank1 = absl::UnknownError("unset");
    std::thread t([&] { rank1 = CreateGlooCommunicator(env1, b); });
    absl::StatusOr<std::unique_ptr<Communicator>> rank0 =
        CreateGlooCommunicator(TwoRanks(0, port), a);
    t.join();
    ASSERT_FALSE(rank0.ok());
    ASSERT_FALSE(rank1.ok());
    if (other_world) {
      EXPECT_THAT(rank0.status().message(), HasSubstr("rank 1 was started with WORLD_SIZE 3"));
    } else {
      EXPECT_THAT(rank0.status().message(),
                  HasSubstr("rank 1 was started with another configuration than rank 0 (config "
                            "hash hash-b vs hash-a)"));
      EXPECT_THAT(rank1.status().message(), HasSubstr("another configuration"));
    }
  }
}

TEST(DistributedEnvTest, ReadsTorchrunVariablesAndNamesBadOnes) {
  auto from = [](std::map<std::string, std::string> vars) {
    return DistributedEnvFrom([vars](const std::string& n) -> std::optional<std::string> {
      auto it = vars.find(n);
      if (it == vars.end()) return std::nullopt;
      return it->second;
    });
  };
  absl::StatusOr<DistributedEnv> one = from({});
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->world_size, 1);
  absl::StatusOr<DistributedEnv> env =
      from({{"WORLD_SIZE", "4"}, {"RANK", "3"}, {"LOCAL_WORLD_SIZE", "2"}, {"LOCAL_RANK", "1"},
            {"MASTER_ADDR", "10.0.0.1"}, {"MASTER_PORT", "1234"}});
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(env->rank, 3);
  EXPECT_EQ(env->local_rank, 1);
  EXPECT_EQ(env->master_addr, "10.0.0.1");
  EXPECT_EQ(env->master_port, 1234);
  EXPECT_THAT(from({{"WORLD_SIZE", "2"}, {"RANK", "2"}, {"MASTER_ADDR", "x"},
                    {"MASTER_PORT", "1"}}).status().message(),
              HasSubstr("RANK (2) must be < WORLD_SIZE (2)"));
  EXPECT_THAT(from({{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_PORT", "1"}}).status().message(),
              HasSubstr("MASTER_ADDR is not set"));
  EXPECT_THAT(from({{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_ADDR", "x"},
                    {"MASTER_PORT", "http"}}).status().message(),
              HasSubstr("MASTER_PORT (http) is not an integer"));
}

}  // namespace
}  // namespace moco::distributed

int main(int argc, char** argv) {
  if (const char* worker = std::getenv("MOCO_GLOO_TEST_WORKER"); worker && *worker == '1') {
    return moco::distributed::Worker();
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
