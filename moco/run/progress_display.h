// Training progress for people: epoch, step, loss, lr, images/s and ETA.
//
// On a terminal (stderr is a tty) a single live line is redrawn in place with '\r', at most
// every Options::min_redraw_seconds (0.2 s: ~5 times a second), and left on screen at the end
// of each epoch, so the scrollback keeps one line per epoch:
//
//   epoch 4/200 [#####...............] 120/468 loss 6.1234 lr 0.03 412.5 img/s ETA 1h02m
//
// Otherwise (a file, a pipe, CI) it emits one plain log line every log_every_steps steps:
//
//   epoch 4/200 step 120/468 loss 6.1234 lr 0.03 412.5 img/s ETA 1h02m
//
// The line formatting is exposed as pure functions so it can be tested without a terminal.
//
//   ProgressDisplay::Options options;
//   options.log_every_steps = config.run().log_every_steps();
//   ProgressDisplay progress(options, epochs, steps_per_epoch, /*start_global_step=*/resumed);
//   ... after each step:  progress.Update(global_step, loss, lr, images_per_sec);
//   ... other output:     progress.Message("kNN top-1 71.25%");
#ifndef MOCO_RUN_PROGRESS_DISPLAY_H_
#define MOCO_RUN_PROGRESS_DISPLAY_H_

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

namespace moco {

// A duration for people: "45s", "3m05s", "1h02m", "2d03h" (rounded to the second first);
// "--" when unknown (negative, NaN or infinite).
std::string FormatEta(double seconds);

// "[#####.....]": `width` cells of which floor(fraction * width) are filled; fraction is
// clamped to [0, 1].
std::string FormatProgressBar(double fraction, int width);

// What one progress line shows. Epochs and steps are 1-based here, as people count.
struct ProgressSnapshot {
  int64_t epoch = 1;            // 1..epochs
  int64_t epochs = 1;
  int64_t step_in_epoch = 0;    // steps done in this epoch, 1..steps_per_epoch
  int64_t steps_per_epoch = 1;
  double loss = 0;
  double lr = 0;
  double images_per_sec = 0;
  double eta_seconds = -1;      // negative: unknown
};

// The live-bar line (no '\r', no newline), e.g.
// "epoch 4/200 [####................] 120/468 loss 6.1234 lr 0.03 412.5 img/s ETA 1h02m".
// The bar shows the fraction of the epoch done.
std::string FormatProgressLine(const ProgressSnapshot& s);

// The plain log line, e.g. "epoch 4/200 step 120/468 loss 6.1234 lr 0.03 412.5 img/s ETA 1h02m".
std::string FormatProgressLogLine(const ProgressSnapshot& s);

// Seconds left if the remaining steps go at the average pace so far: elapsed / done *
// remaining. Negative (unknown) when no step is done yet.
double EstimateEtaSeconds(double elapsed_seconds, int64_t steps_done, int64_t steps_remaining);

// Shows progress as a live bar or as periodic log lines (see the file comment). Not
// thread-safe: call it from the training loop's thread.
class ProgressDisplay {
 public:
  enum class Mode {
    kAuto,  // live if `terminal` is a tty, else log lines
    kLive,
    kLog,
  };
  struct Options {
    Mode mode = Mode::kAuto;
    // Log mode: a line when the global step is a multiple of this (and at the last step).
    int log_every_steps = 50;
    // Live mode: the least time between two redraws of the bar.
    double min_redraw_seconds = 0.2;
    // Where the live bar is drawn and what kAuto tests with isatty.
    FILE* terminal = stderr;
    // Receives log-mode lines and messages; default: LOG(INFO) (the pipeline should log to
    // stderr, e.g. FLAGS_alsologtostderr, for them to show).
    std::function<void(const std::string&)> log_sink;
    // Monotonic seconds; default: std::chrono::steady_clock.
    std::function<double()> clock;
  };

  // A run of `epochs` x `steps_per_epoch` steps of which `start_global_step` were done before
  // this process started (a resumed run); the ETA uses only the steps timed here.
  ProgressDisplay(Options options, int64_t epochs, int64_t steps_per_epoch,
                  int64_t start_global_step);
  ~ProgressDisplay();

  ProgressDisplay(const ProgressDisplay&) = delete;
  ProgressDisplay& operator=(const ProgressDisplay&) = delete;

  // Reports that `global_step` steps are done in total (1-based: the first step of the run is
  // 1), with that step's loss, lr and throughput.
  void Update(int64_t global_step, double loss, double lr, double images_per_sec);

  // Shows a line of other output (a kNN result, a checkpoint note) without garbling the bar:
  // live mode clears the bar, prints `text` on its own line, and redraws at the next Update.
  void Message(const std::string& text);

  // Ends a live line still on screen with a newline (also done by the destructor).
  void Finish();

  bool live() const { return live_; }

 private:
  ProgressSnapshot Snapshot(int64_t global_step, double loss, double lr,
                            double images_per_sec, double now) const;
  void Draw(const std::string& line, bool end_line);

  Options options_;
  bool live_ = false;
  int64_t epochs_;
  int64_t steps_per_epoch_;
  int64_t start_global_step_;
  double start_time_;
  double last_draw_time_ = -1e300;
  bool line_open_ = false;  // a live bar is on screen without its newline
};

}  // namespace moco

#endif  // MOCO_RUN_PROGRESS_DISPLAY_H_
