#include "moco/run/progress_display.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moco {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(FormatEtaTest, Units) {
  EXPECT_EQ(FormatEta(0), "0s");
  EXPECT_EQ(FormatEta(45.4), "45s");
  EXPECT_EQ(FormatEta(59.6), "1m00s");  // rounds to 60 s first
  EXPECT_EQ(FormatEta(185), "3m05s");
  EXPECT_EQ(FormatEta(3599), "59m59s");
  EXPECT_EQ(FormatEta(3720), "1h02m");
  EXPECT_EQ(FormatEta(86399), "23h59m");
  EXPECT_EQ(FormatEta(26 * 3600 + 180), "1d02h");
}

TEST(FormatEtaTest, UnknownValues) {
  EXPECT_EQ(FormatEta(-1), "--");
  EXPECT_EQ(FormatEta(std::nan("")), "--");
  EXPECT_EQ(FormatEta(std::numeric_limits<double>::infinity()), "--");
}

TEST(FormatProgressBarTest, FillsFloorOfFraction) {
  EXPECT_EQ(FormatProgressBar(0, 10), "[..........]");
  EXPECT_EQ(FormatProgressBar(0.5, 10), "[#####.....]");
  EXPECT_EQ(FormatProgressBar(0.29, 10), "[##........]");
  EXPECT_EQ(FormatProgressBar(1, 4), "[####]");
  EXPECT_EQ(FormatProgressBar(1.7, 4), "[####]");
  EXPECT_EQ(FormatProgressBar(-3, 4), "[....]");
  EXPECT_EQ(FormatProgressBar(std::nan(""), 4), "[....]");
}

ProgressSnapshot Example() {
  ProgressSnapshot s;
  s.epoch = 4;
  s.epochs = 200;
  s.step_in_epoch = 120;
  s.steps_per_epoch = 468;
  s.loss = 6.12344;
  s.lr = 0.03;
  s.images_per_sec = 412.46;
  s.eta_seconds = 3720;
  return s;
}

TEST(FormatProgressLineTest, LiveLine) {
  // 120/468 = 0.256 of 20 cells -> 5 filled.
  EXPECT_EQ(FormatProgressLine(Example()),
            "epoch 4/200 [#####...............] 120/468 loss 6.1234 lr 0.03 412.5 img/s ETA "
            "1h02m");
}

TEST(FormatProgressLineTest, LogLine) {
  ProgressSnapshot s = Example();
  s.lr = 1.850513e-6;
  s.eta_seconds = -1;
  EXPECT_EQ(FormatProgressLogLine(s),
            "epoch 4/200 step 120/468 loss 6.1234 lr 1.851e-06 412.5 img/s ETA --");
}

TEST(EstimateEtaTest, AveragePace) {
  EXPECT_DOUBLE_EQ(EstimateEtaSeconds(10, 5, 20), 40);
  EXPECT_DOUBLE_EQ(EstimateEtaSeconds(10, 5, 0), 0);
  EXPECT_LT(EstimateEtaSeconds(10, 0, 20), 0);
}

// A fake clock and a memory FILE* standing in for the terminal.
class ProgressDisplayTest : public ::testing::Test {
 protected:
  void SetUp() override { terminal_ = open_memstream(&buffer_, &size_); }
  void TearDown() override {
    std::fclose(terminal_);
    std::free(buffer_);
  }
  std::string Screen() {
    std::fflush(terminal_);
    return std::string(buffer_, size_);
  }
  ProgressDisplay::Options Opts(ProgressDisplay::Mode mode) {
    ProgressDisplay::Options o;
    o.mode = mode;
    o.terminal = terminal_;
    o.clock = [this] { return now_; };
    o.log_sink = [this](const std::string& line) { log_.push_back(line); };
    return o;
  }

  FILE* terminal_ = nullptr;
  char* buffer_ = nullptr;
  size_t size_ = 0;
  double now_ = 100.0;
  std::vector<std::string> log_;
};

TEST_F(ProgressDisplayTest, AutoModeOnANonTerminalLogs) {
  ProgressDisplay p(Opts(ProgressDisplay::Mode::kAuto), 2, 5, 0);
  EXPECT_FALSE(p.live());
}

TEST_F(ProgressDisplayTest, LogModeEveryNStepsAndAtTheEnd) {
  ProgressDisplay::Options o = Opts(ProgressDisplay::Mode::kLog);
  o.log_every_steps = 3;
  ProgressDisplay p(o, /*epochs=*/2, /*steps_per_epoch=*/5, /*start_global_step=*/0);
  for (int step = 1; step <= 10; ++step) {
    now_ += 2.0;  // 2 s per step
    p.Update(step, 1.0, 0.5, 32.0);
  }
  // Steps 3, 6, 9 and the last (10). After step 3: 6 s for 3 steps, 7 left -> 14 s.
  EXPECT_THAT(log_, ElementsAre("epoch 1/2 step 3/5 loss 1.0000 lr 0.5 32.0 img/s ETA 14s",
                                "epoch 2/2 step 1/5 loss 1.0000 lr 0.5 32.0 img/s ETA 8s",
                                "epoch 2/2 step 4/5 loss 1.0000 lr 0.5 32.0 img/s ETA 2s",
                                "epoch 2/2 step 5/5 loss 1.0000 lr 0.5 32.0 img/s ETA 0s"));
  EXPECT_EQ(Screen(), "");  // nothing drawn on the terminal
}

TEST_F(ProgressDisplayTest, ResumedRunTimesOnlyItsOwnSteps) {
  ProgressDisplay::Options o = Opts(ProgressDisplay::Mode::kLog);
  o.log_every_steps = 1;
  ProgressDisplay p(o, 10, 10, /*start_global_step=*/50);
  now_ += 4.0;
  p.Update(51, 2.0, 0.1, 8.0);  // 4 s per step, 49 steps left -> 196 s
  ASSERT_EQ(log_.size(), 1u);
  EXPECT_THAT(log_[0], HasSubstr("epoch 6/10 step 1/10"));
  EXPECT_THAT(log_[0], HasSubstr("ETA 3m16s"));
}

TEST_F(ProgressDisplayTest, LiveModeRedrawsAtMostFiveTimesASecond) {
  ProgressDisplay p(Opts(ProgressDisplay::Mode::kLive), 1, 1000, 0);
  ASSERT_TRUE(p.live());
  for (int step = 1; step <= 100; ++step) {  // 100 steps in 1 s
    now_ += 0.01;
    p.Update(step, 1.0, 0.5, 32.0);
  }
  const std::string screen = Screen();
  const auto redraws = std::count(screen.begin(), screen.end(), '\r');
  // At t = 0.01, 0.21, 0.41, 0.61, 0.81 (and maybe 1.0 with rounding): 5 or 6, never 100.
  EXPECT_GE(redraws, 5);
  EXPECT_LE(redraws, 6);
  EXPECT_EQ(screen.find('\n'), std::string::npos);  // one line, redrawn in place
  EXPECT_THAT(screen, HasSubstr("\x1b[K"));
  EXPECT_THAT(screen, HasSubstr("epoch 1/1 [....................] 1/1000"));
}

TEST_F(ProgressDisplayTest, LiveModeKeepsOneLinePerEpoch) {
  ProgressDisplay p(Opts(ProgressDisplay::Mode::kLive), 2, 3, 0);
  for (int step = 1; step <= 6; ++step) {
    now_ += 0.01;  // fast steps: only the first and each epoch's last are drawn
    p.Update(step, 1.0, 0.5, 32.0);
  }
  const std::string screen = Screen();
  EXPECT_EQ(std::count(screen.begin(), screen.end(), '\n'), 2);
  EXPECT_THAT(screen, HasSubstr("epoch 1/2 [####################] 3/3"));
  EXPECT_THAT(screen, HasSubstr("epoch 2/2 [####################] 3/3"));
  EXPECT_EQ(screen.back(), '\n');
}

TEST_F(ProgressDisplayTest, LiveMessageClearsTheBarAndFinishEndsTheLine) {
  {
    ProgressDisplay p(Opts(ProgressDisplay::Mode::kLive), 1, 10, 0);
    now_ += 1;
    p.Update(1, 1.0, 0.5, 32.0);
    p.Message("kNN top-1 71.25%");
    now_ += 0.01;  // a redraw is due right after a message
    p.Update(2, 1.0, 0.5, 32.0);
  }  // destructor: Finish()
  const std::string screen = Screen();
  EXPECT_THAT(screen, HasSubstr("\rkNN top-1 71.25%\x1b[K\n\repoch 1/1 [####"));
  EXPECT_EQ(screen.back(), '\n');
  EXPECT_TRUE(log_.empty());
}

TEST_F(ProgressDisplayTest, LogMessageGoesToTheLog) {
  ProgressDisplay p(Opts(ProgressDisplay::Mode::kLog), 1, 10, 0);
  p.Message("checkpoint written");
  EXPECT_THAT(log_, ElementsAre("checkpoint written"));
}

}  // namespace
}  // namespace moco
