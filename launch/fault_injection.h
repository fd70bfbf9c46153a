// config.fault_injection on the training loop's side: failing on purpose at a given step and rank
// (throw, exit, hang, SIGTERM, or slow steps) to test fault handling end to end.
#pragma once

#include <cstdint>
#include <functional>

#include "core/config.pb.h"

namespace dpt {

// Called by every rank before step `step`; does what `fault` says when it names this rank and
// step (FAULT_SLOW: every step from fault.step on), otherwise nothing. FAULT_SIGTERM signals the
// process, as a scheduler does; another thread handles it (launch/stop_signal.h), so with a
// `stop_requested` it then waits until that shows the request: the run stops after this step.
void maybe_inject_fault(const proto::FaultInjection& fault, int rank, int64_t step,
                        const std::function<bool()>& stop_requested);

}  // namespace dpt
