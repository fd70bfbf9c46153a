// Preemption: SIGTERM or SIGINT asks the run to stop after the current step, save a checkpoint
// and exit 0; a second signal ends the process at once (exit 128 + signal) without touching the
// last good checkpoint (saves are atomic renames). The signal handler only sets a flag; the
// trainer polls it once per step and all-reduces it, so every rank stops after the same step.
// The flag is the one process-wide variable dpt has: a signal handler can reach nothing else.
#pragma once

namespace dpt {

class StopSignal {
 public:
  // Installs the handlers for SIGTERM and SIGINT; the destructor restores the previous ones.
  StopSignal();
  ~StopSignal();
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  // The signal received (SIGTERM or SIGINT), or 0.
  int received() const;
};

}  // namespace dpt
