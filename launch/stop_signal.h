// Preemption: SIGTERM or SIGINT asks the run to stop after the current step, save a checkpoint
// and exit 0; a second signal ends the process at once (exit 128 + signal) without touching the
// last good checkpoint (saves are atomic renames). The signal handler only sets a flag; the
// trainer polls it once per step and all-reduces it, so every rank stops after the same step.
// The flag is the one process-wide variable dpt has: a signal handler can reach nothing else.
//
// Which thread runs the handler matters. oneDNN 2.x's JIT f32 GEMM (our CPU sgemm) points the
// stack pointer at a heap workspace while it runs, so a handler that interrupts it pushes its
// frame into the heap and corrupts it (oneDNN issue #4845, fixed in oneDNN 3.11; Debian 12 ships
// 2.x): about one SIGTERM in ten crashed the save that followed. StopSignal therefore blocks both
// signals in the thread that creates it, and so in every thread started after it (training,
// gradient sync, OpenMP), and keeps one thread of its own, which only waits, with them unblocked:
// the kernel hands a signal sent to the process to a thread that does not block it.
#pragma once

#include <signal.h>

#include <condition_variable>
#include <mutex>
#include <thread>

namespace dpt {

class StopSignal {
 public:
  // Blocks SIGTERM and SIGINT in the calling thread, installs the handlers and starts the thread
  // that receives them. Create it before the threads that compute; the destructor restores the
  // calling thread's mask and the previous handlers (threads started meanwhile keep the block).
  StopSignal();
  ~StopSignal();
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  // The signal received (SIGTERM or SIGINT), or 0. Any thread may call it.
  int received() const;

 private:
  struct sigaction previous_term_ = {}, previous_int_ = {};
  sigset_t previous_mask_ = {};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool done_ = false;
  std::thread receiver_;  // started last, joined first
};

}  // namespace dpt
