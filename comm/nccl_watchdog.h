// The poll loop that bounds every NCCL wait in time (../shared/RELIABILITY.md: NCCL has no
// collective timeout of its own). It polls the work's completion, the communicator's asynchronous
// error and an abort request until the deadline; on an error, a request or the deadline it
// aborts the communicator (ncclCommAbort) and throws. Free of CUDA and NCCL, so the rules are
// tested on machines without a GPU (tests/unit/comm/nccl_watchdog_test.cpp).
#pragma once

#include <functional>
#include <string>

#include "comm/transport.h"

namespace dpt {

struct WatchHooks {
  std::function<bool()> done;             // the work has finished (cudaEventQuery)
  std::function<std::string()> failed;    // non-empty: the communicator's asynchronous error
  std::function<bool()> abort_requested;  // Communicator::abort() was called on another thread
  std::function<void()> abort;            // aborts the communicator (ncclCommAbort); noexcept
  // Optional, after a timeout only (the communicator already aborted): who did not arrive, e.g.
  // "ranks that did not arrive: 2" (collective_check.h's find_missing_ranks over MPI).
  std::function<std::string()> missing;
};

// Returns once hooks.done() is true. Otherwise calls hooks.abort() once and throws
// dpt::Error(kComm): "nccl: all_reduce #7 on rank 1 timed out after 0.5 s; ranks that did not
// arrive: 2; communicator aborted (a peer is dead, hung or in another collective)" (the middle
// part from hooks.missing, when given), "nccl: all_reduce #7 on rank 1 failed:
// <error>; communicator aborted" or "... was aborted on request". `what` names the operation,
// e.g. "all_reduce #7"; `timeout_s` is what the deadline was set from.
void watch_until_done(const std::string& what, int rank, double timeout_s,
                      Clock::time_point deadline, const WatchHooks& hooks);

}  // namespace dpt
