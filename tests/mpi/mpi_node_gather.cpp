// The node-local exchange of device selection under `mpirun -np N` (one node): gather_on_node
// returns every process's text, of any length including empty, indexed by local rank; and
// select_device, which exchanges the GPUs each worker sees, completes when the ranks differ in
// device.kind (MPMD: kind CPU ranks join the exchange with nothing). Prints each failure; exits 1
// when any rank failed.
#include <mpi.h>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "devices/cuda_support.h"
#include "launch/device_select.h"
#include "launch/world.h"
#include "mpi/mpi_expect.h"

namespace {

dpt::testing::MpiExpect expect;  // rank set in main()

// Rank r's text: empty for rank 0, then bus-id-like texts of growing length.
std::string text_of(int rank) {
  std::string text;
  for (int i = 0; i < rank; ++i) text += (i ? "," : "") + std::string("0000:") + char('a' + i);
  return text;
}

void run(const dpt::WorldInfo& world) {
  expect(world.local_size == world.size, "one node: every process is node-local");
  const std::vector<std::string> gathered = dpt::gather_on_node(world, text_of(world.rank));
  expect(static_cast<int>(gathered.size()) == world.local_size, "one text per local rank");
  for (std::size_t r = 0; r < gathered.size(); ++r) {
    expect(gathered[r] == text_of(static_cast<int>(r)),
           "local rank " + std::to_string(r) + " said \"" + gathered[r] + "\"");
  }

  // MPMD-like: the last rank asks for AUTO, the others for the CPU. The exchange must not hang,
  // and AUTO takes the GPU exactly when this machine has a usable one.
  dpt::proto::DeviceConfig config;
  config.set_threads(1);
  const bool last = world.rank == world.size - 1;
  config.set_kind(last ? dpt::proto::AUTO : dpt::proto::CPU);
  const dpt::DeviceChoice choice = dpt::select_device(config, world);
  const bool gpu = last && !dpt::usable_gpus(dpt::probe_gpus()).empty();
  expect((choice.device->kind() == dpt::DeviceKind::kCuda) == gpu, "device: " + choice.reason);
}

}  // namespace

int main() {
  dpt::MpiSession session(true);
  dpt::WorldInfo world;
  try {
    world = dpt::discover_world(session);
    expect.rank = world.rank;
    run(world);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rank %d: %s\n", expect.rank, e.what());
    session.abort(2);
  }
  const int total = expect.total_failures("mpi_node_gather");
  return total == 0 ? 0 : 1;
}
