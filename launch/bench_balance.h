// `dpt bench step` under mpirun with comm.balance: BALANCE_THROUGHPUT: shares in proportion to
// each rank's measured samples/s, then steps with equal and with balanced shares alternating, so
// both see the same machine load; prints the comparison on rank 0 and returns it as JSON.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>

#include "comm/communicator.h"
#include "core/config.pb.h"
#include "launch/train_step.h"

namespace dpt {

// Runs one step computing `shard`; returns its seconds and adds its phases to `phases`.
using OneStep = std::function<double(Shard shard, StepTimes& phases)>;

// Shares in proportion to the samples/s each rank showed in `steps` timed steps with equal
// shares (`equal_phases`), then `warmup` steps with them, then `steps` pairs of one step with
// equal shares and one with balanced shares. Collective: every rank calls it.
nlohmann::json compare_balance(Communicator& comm, const proto::Config& config, int64_t batch,
                               int64_t warmup, int64_t steps, const StepTimes& equal_phases,
                               const OneStep& one_step);

}  // namespace dpt
