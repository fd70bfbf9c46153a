// launch/fault_injection.h: the faults the trainer injects on request.
#include "launch/fault_injection.h"

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <thread>

#include "devices/error.h"

namespace dpt {

// Fails on purpose as config.fault_injection says (testing fault handling end to end).
void maybe_inject_fault(const proto::FaultInjection& fault, int rank, int64_t step) {
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
    case proto::FAULT_SIGTERM:
      std::raise(SIGTERM);
      return;
    default:
      return;
  }
}

}  // namespace dpt
