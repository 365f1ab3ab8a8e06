#include "moco/run/progress_display.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "absl/strings/str_format.h"
#include "glog/logging.h"

namespace moco {
namespace {

constexpr int kBarWidth = 20;
constexpr char kClearToEndOfLine[] = "\x1b[K";

double SteadySeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// "loss 6.1234 lr 0.03 412.5 img/s ETA 1h02m"
std::string Tail(const ProgressSnapshot& s) {
  return absl::StrFormat("loss %.4f lr %.4g %.1f img/s ETA %s", s.loss, s.lr, s.images_per_sec,
                         FormatEta(s.eta_seconds));
}

}  // namespace

std::string FormatEta(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--";
  const int64_t t = std::llround(seconds);
  if (t < 60) return absl::StrFormat("%ds", t);
  if (t < 3600) return absl::StrFormat("%dm%02ds", t / 60, t % 60);
  if (t < 86400) return absl::StrFormat("%dh%02dm", t / 3600, (t % 3600) / 60);
  return absl::StrFormat("%dd%02dh", t / 86400, (t % 86400) / 3600);
}

std::string FormatProgressBar(double fraction, int width) {
  if (!(fraction >= 0)) fraction = 0;  // also NaN
  fraction = std::min(fraction, 1.0);
  const int filled = std::min(width, static_cast<int>(std::floor(fraction * width)));
  return "[" + std::string(filled, '#') + std::string(width - filled, '.') + "]";
}

std::string FormatProgressLine(const ProgressSnapshot& s) {
  const double fraction =
      static_cast<double>(s.step_in_epoch) / static_cast<double>(std::max<int64_t>(1, s.steps_per_epoch));
  return absl::StrFormat("epoch %d/%d %s %d/%d %s", s.epoch, s.epochs,
                         FormatProgressBar(fraction, kBarWidth), s.step_in_epoch,
                         s.steps_per_epoch, Tail(s));
}

std::string FormatProgressLogLine(const ProgressSnapshot& s) {
  return absl::StrFormat("epoch %d/%d step %d/%d %s", s.epoch, s.epochs, s.step_in_epoch,
                         s.steps_per_epoch, Tail(s));
}

double EstimateEtaSeconds(double elapsed_seconds, int64_t steps_done, int64_t steps_remaining) {
  if (steps_done <= 0) return -1;
  return elapsed_seconds / static_cast<double>(steps_done) *
         static_cast<double>(std::max<int64_t>(0, steps_remaining));
}

ProgressDisplay::ProgressDisplay(Options options, int64_t epochs, int64_t steps_per_epoch,
                                 int64_t start_global_step)
    : options_(std::move(options)),
      epochs_(epochs),
      steps_per_epoch_(std::max<int64_t>(1, steps_per_epoch)),
      start_global_step_(start_global_step) {
  if (!options_.clock) options_.clock = SteadySeconds;
  if (!options_.log_sink) {
    options_.log_sink = [](const std::string& line) { LOG(INFO) << line; };
  }
  if (options_.log_every_steps < 1) options_.log_every_steps = 1;
  switch (options_.mode) {
    case Mode::kLive:
      live_ = options_.terminal != nullptr;
      break;
    case Mode::kLog:
      live_ = false;
      break;
    case Mode::kAuto: {
      const int fd = options_.terminal == nullptr ? -1 : fileno(options_.terminal);
      live_ = fd >= 0 && isatty(fd) == 1;
      break;
    }
  }
  start_time_ = options_.clock();
}

ProgressDisplay::~ProgressDisplay() { Finish(); }

ProgressSnapshot ProgressDisplay::Snapshot(int64_t global_step, double loss, double lr,
                                           double images_per_sec, double now) const {
  ProgressSnapshot s;
  const int64_t done = std::max<int64_t>(1, global_step);
  s.epoch = (done - 1) / steps_per_epoch_ + 1;
  s.epochs = epochs_;
  s.step_in_epoch = (done - 1) % steps_per_epoch_ + 1;
  s.steps_per_epoch = steps_per_epoch_;
  s.loss = loss;
  s.lr = lr;
  s.images_per_sec = images_per_sec;
  s.eta_seconds = EstimateEtaSeconds(now - start_time_, global_step - start_global_step_,
                                     epochs_ * steps_per_epoch_ - global_step);
  return s;
}

void ProgressDisplay::Update(int64_t global_step, double loss, double lr,
                             double images_per_sec) {
  const double now = options_.clock();
  const ProgressSnapshot s = Snapshot(global_step, loss, lr, images_per_sec, now);
  const bool last_of_run = global_step >= epochs_ * steps_per_epoch_;
  if (live_) {
    const bool end_of_epoch = s.step_in_epoch == s.steps_per_epoch;
    if (end_of_epoch || last_of_run || now - last_draw_time_ >= options_.min_redraw_seconds) {
      Draw(FormatProgressLine(s), end_of_epoch || last_of_run);
      last_draw_time_ = now;
    }
  } else if (global_step % options_.log_every_steps == 0 || last_of_run) {
    options_.log_sink(FormatProgressLogLine(s));
  }
}

void ProgressDisplay::Draw(const std::string& line, bool end_line) {
  std::fprintf(options_.terminal, "\r%s%s%s", line.c_str(), kClearToEndOfLine,
               end_line ? "\n" : "");
  std::fflush(options_.terminal);
  line_open_ = !end_line;
}

void ProgressDisplay::Message(const std::string& text) {
  if (!live_) {
    options_.log_sink(text);
    return;
  }
  // Over an open bar: return to the line's start, write the text, clear the rest of the bar.
  std::fprintf(options_.terminal, "%s%s%s\n", line_open_ ? "\r" : "", text.c_str(),
               line_open_ ? kClearToEndOfLine : "");
  std::fflush(options_.terminal);
  line_open_ = false;
  last_draw_time_ = -1e300;  // redraw the bar at the next update
}

void ProgressDisplay::Finish() {
  if (live_ && line_open_) {
    std::fputc('\n', options_.terminal);
    std::fflush(options_.terminal);
    line_open_ = false;
  }
}

}  // namespace moco
