// StopSignal: a lock-free atomic flag, async-signal-safe handlers, and the one thread that has
// SIGTERM and SIGINT unblocked (see stop_signal.h for why the threads that compute block them).
#include "launch/stop_signal.h"

#include <pthread.h>
#include <unistd.h>

#include <atomic>

namespace dpt {
namespace {

// Written by the handler on the receiving thread, read by the training threads: it must be
// lock-free to be async-signal-safe.
std::atomic<int> g_received{0};
static_assert(std::atomic<int>::is_always_lock_free, "the signal handler needs a lock-free flag");

void on_signal(int signal) {
  int none = 0;
  if (!g_received.compare_exchange_strong(none, signal)) _exit(128 + signal);  // the second one
}

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

}  // namespace

StopSignal::StopSignal() {
  g_received = 0;
  const sigset_t signals = stop_signals();
  // Blocked before the handlers exist, so that no signal is handled on this thread meanwhile; a
  // signal sent now stays pending until the receiver unblocks it.
  pthread_sigmask(SIG_BLOCK, &signals, &previous_mask_);
  struct sigaction action = {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &action, &previous_term_);
  sigaction(SIGINT, &action, &previous_int_);
  receiver_ = std::thread([this, signals] {
    pthread_sigmask(SIG_UNBLOCK, &signals, nullptr);
    // Sleeps in the kernel: the handler runs here on an ordinary stack, however often it comes.
    std::unique_lock<std::mutex> lock(mutex_);
    wake_.wait(lock, [this] { return done_; });
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  });
}

StopSignal::~StopSignal() {
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    done_ = true;
  }
  wake_.notify_one();
  receiver_.join();
  // A signal that came after the receiver stopped is pending here: unblocking delivers it to this
  // thread while our handler is still installed (a stop request too late to matter, or the
  // second signal's exit), before the previous handlers return.
  pthread_sigmask(SIG_SETMASK, &previous_mask_, nullptr);
  sigaction(SIGTERM, &previous_term_, nullptr);
  sigaction(SIGINT, &previous_int_, nullptr);
}

int StopSignal::received() const { return g_received; }

}  // namespace dpt
