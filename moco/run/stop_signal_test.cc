#include "moco/run/stop_signal.h"

#include <signal.h>
#include <unistd.h>

#include "gtest/gtest.h"

namespace moco {
namespace {

sighandler_t CurrentHandler(int sig) {
  struct sigaction sa;
  sigaction(sig, nullptr, &sa);
  return sa.sa_handler;
}

// Every test starts from default dispositions and ends uninstalled.
class StopSignalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
  }
  void TearDown() override {
    UninstallStopSignalHandlers();
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
  }
};

TEST_F(StopSignalTest, SigintRequestsAStopAndRestoresDefaults) {
  InstallStopSignalHandlers();
  EXPECT_FALSE(StopRequested());
  EXPECT_NE(CurrentHandler(SIGINT), SIG_DFL);
  EXPECT_NE(CurrentHandler(SIGTERM), SIG_DFL);
  ASSERT_EQ(raise(SIGINT), 0);  // the handler runs before raise returns
  EXPECT_TRUE(StopRequested());
  EXPECT_EQ(StopSignalNumber(), SIGINT);
  // A second signal would now take the default action.
  EXPECT_EQ(CurrentHandler(SIGINT), SIG_DFL);
  EXPECT_EQ(CurrentHandler(SIGTERM), SIG_DFL);
}

TEST_F(StopSignalTest, SigtermRequestsAStop) {
  InstallStopSignalHandlers();
  ASSERT_EQ(raise(SIGTERM), 0);
  EXPECT_TRUE(StopRequested());
  EXPECT_EQ(StopSignalNumber(), SIGTERM);
}

TEST_F(StopSignalTest, UninstallRestoresThePreviousHandlersAndClears) {
  signal(SIGTERM, SIG_IGN);
  InstallStopSignalHandlers();
  InstallStopSignalHandlers();  // idempotent: does not save its own handler
  raise(SIGINT);
  ASSERT_TRUE(StopRequested());
  UninstallStopSignalHandlers();
  EXPECT_FALSE(StopRequested());
  EXPECT_EQ(StopSignalNumber(), 0);
  EXPECT_EQ(CurrentHandler(SIGINT), SIG_DFL);
  EXPECT_EQ(CurrentHandler(SIGTERM), SIG_IGN);
}

TEST_F(StopSignalTest, IgnoredSignalStaysIgnored) {
  signal(SIGINT, SIG_IGN);
  InstallStopSignalHandlers();
  EXPECT_EQ(CurrentHandler(SIGINT), SIG_IGN);
  raise(SIGINT);  // ignored: the process lives and no stop is requested
  EXPECT_FALSE(StopRequested());
  raise(SIGTERM);  // still handled
  EXPECT_TRUE(StopRequested());
}

TEST_F(StopSignalTest, SecondSigintKills) {
  EXPECT_EXIT(
      {
        InstallStopSignalHandlers();
        raise(SIGINT);
        if (!StopRequested()) _exit(3);  // first signal must only request a stop
        raise(SIGINT);
        _exit(0);  // not reached
      },
      ::testing::KilledBySignal(SIGINT), "stop requested");
}

TEST_F(StopSignalTest, SigtermAfterSigintKills) {
  EXPECT_EXIT(
      {
        InstallStopSignalHandlers();
        raise(SIGINT);
        if (!StopRequested()) _exit(3);
        raise(SIGTERM);
        _exit(0);
      },
      ::testing::KilledBySignal(SIGTERM), "");
}

}  // namespace
}  // namespace moco
