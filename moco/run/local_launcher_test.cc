// The local launcher on real processes: this binary re-executes itself as the ranks
// (LAUNCHER_TEST_MODE selects what a rank does).
#include "moco/run/local_launcher.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moco {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

std::atomic<bool> got_sigterm{false};
void OnSigterm(int) { got_sigterm = true; }

// What a rank does, by LAUNCHER_TEST_MODE.
int Rank() {
  const std::string mode = Env("LAUNCHER_TEST_MODE");
  int rank = -1, world = -1, port = -1;
  if (!absl::SimpleAtoi(Env("RANK"), &rank) || !absl::SimpleAtoi(Env("WORLD_SIZE"), &world) ||
      !absl::SimpleAtoi(Env("MASTER_PORT"), &port)) {
    std::cerr << "rank: torchrun variables missing\n";
    return 4;
  }
  if (mode == "env") {
    const bool ok = rank >= 0 && rank < world && world == 3 && Env("LOCAL_RANK") == Env("RANK") &&
                    Env("LOCAL_WORLD_SIZE") == "3" && Env("MASTER_ADDR") == "127.0.0.1" &&
                    port > 0 && StartedByLocalLauncher() && Env("EXTRA") == "yes";
    return ok ? 0 : 4;
  }
  if (mode == "one_fails") {
    if (rank == 1) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      std::cerr << "rank 1: boom\n";
      return 3;
    }
    signal(SIGTERM, SIG_IGN);  // a rank that does not react: the launcher must kill it
    std::this_thread::sleep_for(std::chrono::seconds(600));
    return 0;
  }
  if (mode == "stop") {
    signal(SIGTERM, OnSigterm);
    std::ofstream(absl::StrCat(Env("READY_DIR"), "/", rank)) << "ready";
    for (int i = 0; i < 6000 && !got_sigterm; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return got_sigterm ? 75 : 5;
  }
  return 6;
}

LaunchOptions Options(const std::string& mode, int nproc) {
  LaunchOptions o;
  o.nproc = nproc;
  o.argv = {"/proc/self/exe"};
  o.extra_env = {"LAUNCHER_TEST_MODE=" + mode, "EXTRA=yes"};
  o.grace_seconds = 1;
  return o;
}

TEST(LocalLauncherTest, EveryRankGetsTorchrunsVariables) {
  absl::StatusOr<LaunchResult> r = LaunchLocalRanks(Options("env", 3));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_EQ(r->failed_rank, -1);
  EXPECT_THAT(r->rank_exit_codes, ElementsAre(0, 0, 0));
}

TEST(LocalLauncherTest, OneRankFailingStopsTheOthersAndIsNamed) {
  absl::StatusOr<LaunchResult> r = LaunchLocalRanks(Options("one_fails", 3));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->failed_rank, 1);
  EXPECT_THAT(r->message, HasSubstr("rank 1 of 3 exited with code 3"));
  // The others ignored SIGTERM and were killed after the grace period.
  EXPECT_THAT(r->rank_exit_codes, ElementsAre(128 + SIGKILL, 3, 128 + SIGKILL));
}

TEST(LocalLauncherTest, ASignalToTheLauncherReachesEveryRankOnce) {
  const std::string ready = absl::StrCat(std::getenv("TEST_TMPDIR"), "/ready");
  std::filesystem::create_directories(ready);
  LaunchOptions o = Options("stop", 2);
  o.extra_env.push_back("READY_DIR=" + ready);
  std::thread sender([&] {
    for (int i = 0; i < 3000; ++i) {
      if (std::filesystem::exists(ready + "/0") && std::filesystem::exists(ready + "/1")) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill(getpid(), SIGTERM);  // handled by the launcher, which forwards it
  });
  absl::StatusOr<LaunchResult> r = LaunchLocalRanks(o);
  sender.join();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 75);
  EXPECT_THAT(r->rank_exit_codes, ElementsAre(75, 75));
}

TEST(LocalLauncherTest, BadOptions) {
  LaunchOptions o = Options("env", 0);
  EXPECT_THAT(LaunchLocalRanks(o).status().message(), HasSubstr("--nproc_per_node (0)"));
  o = Options("env", 2);
  o.argv.clear();
  EXPECT_FALSE(LaunchLocalRanks(o).ok());
}

}  // namespace
}  // namespace moco

int main(int argc, char** argv) {
  if (std::getenv("LAUNCHER_TEST_MODE") != nullptr) return moco::Rank();
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
