// launch/fault_injection.h: the faults the trainer injects on request.
#include "launch/fault_injection.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "devices/error.h"

namespace dpt {

// Fails on purpose as config.fault_injection says (testing fault handling end to end).
void maybe_inject_fault(const proto::FaultInjection& fault, int rank, int64_t step,
                        const std::function<bool()>& stop_requested) {
  if (fault.rank() != rank) return;
  if (fault.kind() == proto::FAULT_SLOW && step >= fault.step()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(fault.slow_ms()));
    return;
  }
  if (fault.step() != step) return;
  switch (fault.kind()) {
    case proto::FAULT_THROW:
      DPT_THROW(ErrorKind::kInternal) << "fault injection: failing at step " << step;
    case proto::FAULT_EXIT:
      std::_Exit(42);
    case proto::FAULT_HANG:
      while (true) std::this_thread::sleep_for(std::chrono::seconds(1));
    case proto::FAULT_SIGTERM: {
      // To the process (raise() would target this thread, which blocks it while StopSignal
      // lives). The handler runs on StopSignal's thread; the bound only keeps a lost signal
      // from hanging the run.
      ::kill(::getpid(), SIGTERM);
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while (stop_requested && !stop_requested()) {
        DPT_CHECK(std::chrono::steady_clock::now() < give_up)
            << "fault injection: SIGTERM sent at step " << step << " but no stop request seen";
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      return;
    }
    default:
      return;
  }
}

}  // namespace dpt
