// watch_until_done (comm/nccl_watchdog.h): spins for the first 200 us (short collectives finish
// there), then polls every 50 us so a long wait does not take a whole CPU from the backward pass.
#include "comm/nccl_watchdog.h"

#include <sstream>
#include <thread>

#include "devices/error.h"

namespace dpt {

void watch_until_done(const std::string& what, int rank, double timeout_s,
                      Clock::time_point deadline, const WatchHooks& hooks) {
  const Clock::time_point start = Clock::now();
  const auto spin = std::chrono::microseconds(200);
  std::string reason;
  bool timed_out = false;
  while (true) {
    if (hooks.done()) return;
    reason = hooks.failed();
    if (!reason.empty()) {
      reason = "failed: " + reason;
      break;
    }
    if (hooks.abort_requested()) {
      reason = "was aborted on request";
      break;
    }
    const Clock::time_point now = Clock::now();
    if (now >= deadline) {
      std::ostringstream text;
      text << "timed out after " << timeout_s << " s";
      reason = text.str();
      timed_out = true;
      break;
    }
    if (now - start < spin) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
  hooks.abort();
  if (timed_out && hooks.missing) {
    const std::string missing = hooks.missing();
    if (!missing.empty()) reason += "; " + missing;
  }
  DPT_THROW(ErrorKind::kComm) << "nccl: " << what << " on rank " << rank << " " << reason
                              << "; communicator aborted (a peer is dead, hung or in another "
                                 "collective)";
}

}  // namespace dpt
