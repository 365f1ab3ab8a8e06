// Graceful stop on SIGINT / SIGTERM: the training loop polls StopRequested() after each step,
// writes a checkpoint and exits cleanly; a second signal kills the process as usual.
//
//   ScopedStopSignalHandlers handlers;  // uninstalled on every return path
//   for (...) {
//     RunStep();
//     if (StopRequested()) { RETURN_IF_ERROR(SaveCheckpointToRunDir(...)); break; }
//   }
#ifndef MOCO_RUN_STOP_SIGNAL_H_
#define MOCO_RUN_STOP_SIGNAL_H_

namespace moco {

// Installs handlers for SIGINT and SIGTERM (idempotent; the handlers that were there are saved).
// A signal whose inherited disposition is SIG_IGN (e.g. SIGINT of a background job started by
// a non-interactive shell) stays ignored. The handler is async-signal-safe: on the first
// signal it records the signal number in a lock-free atomic, resets SIGINT and SIGTERM to
// their default action (so a second Ctrl-C or kill terminates the process at once), and
// writes a one-line note to stderr with write(2).
void InstallStopSignalHandlers();

// True once SIGINT or SIGTERM arrived after InstallStopSignalHandlers(). Safe from any thread.
bool StopRequested();

// The signal that requested the stop (SIGINT or SIGTERM), 0 if none.
int StopSignalNumber();

// Restores the SIGINT and SIGTERM dispositions saved by the first install and clears the
// stop request. A no-op if not installed.
void UninstallStopSignalHandlers();

// Installs the handlers for its lifetime: every return path of the training loop, errors
// included, leaves the process's signal dispositions as they were.
class ScopedStopSignalHandlers {
 public:
  ScopedStopSignalHandlers() { InstallStopSignalHandlers(); }
  ~ScopedStopSignalHandlers() { UninstallStopSignalHandlers(); }
  ScopedStopSignalHandlers(const ScopedStopSignalHandlers&) = delete;
  ScopedStopSignalHandlers& operator=(const ScopedStopSignalHandlers&) = delete;
};

}  // namespace moco

#endif  // MOCO_RUN_STOP_SIGNAL_H_
