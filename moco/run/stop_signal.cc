#include "moco/run/stop_signal.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

namespace moco {
namespace {

static_assert(std::atomic<int>::is_always_lock_free,
              "the stop flag must be lock-free to be set from a signal handler");

std::atomic<int> g_stop_signal{0};

// Only touched by Install/Uninstall (not from the handler).
bool g_installed = false;
struct sigaction g_saved_int;
struct sigaction g_saved_term;

constexpr char kNote[] =
    "\nstop requested: finishing the current step and writing a checkpoint "
    "(send the signal again to exit at once)\n";

void SetDefault(int sig) {
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, nullptr);
}

extern "C" void OnStopSignal(int sig) {
  const int saved_errno = errno;
  g_stop_signal.store(sig, std::memory_order_relaxed);
  // sigaction and write are async-signal-safe (POSIX.1-2008, signal-safety(7)).
  SetDefault(SIGINT);
  SetDefault(SIGTERM);
  ssize_t ignored = write(STDERR_FILENO, kNote, sizeof(kNote) - 1);
  (void)ignored;
  errno = saved_errno;
}

// Installs the handler for `sig` unless `saved` (its current disposition) ignores it.
void InstallOne(int sig, struct sigaction* saved) {
  sigaction(sig, nullptr, saved);
  if (saved->sa_handler == SIG_IGN && !(saved->sa_flags & SA_SIGINFO)) return;
  struct sigaction sa = {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGINT);
  sigaddset(&sa.sa_mask, SIGTERM);
  sa.sa_flags = SA_RESTART;  // blocking reads in loader threads are not interrupted
  sigaction(sig, &sa, nullptr);
}

}  // namespace

void InstallStopSignalHandlers() {
  if (g_installed) return;
  g_installed = true;
  g_stop_signal.store(0);
  InstallOne(SIGINT, &g_saved_int);
  InstallOne(SIGTERM, &g_saved_term);
}

bool StopRequested() { return g_stop_signal.load(std::memory_order_relaxed) != 0; }

int StopSignalNumber() { return g_stop_signal.load(std::memory_order_relaxed); }

void UninstallStopSignalHandlers() {
  if (!g_installed) return;
  sigaction(SIGINT, &g_saved_int, nullptr);
  sigaction(SIGTERM, &g_saved_term, nullptr);
  g_stop_signal.store(0);
  g_installed = false;
}

}  // namespace moco
