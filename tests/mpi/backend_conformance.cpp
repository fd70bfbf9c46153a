// The communicator conformance suite (tests/comm_conformance.h) on any backend by name, as
// make_communicator builds it: `mpirun -np N backend_conformance BACKEND [PLUGIN_PATH]`, e.g.
// `local` (-np 1), `plugin path/to/libdpt_gloo.so` (-np 1..4) or `nccl` (one GPU per rank: node-
// local rank k on cuda:k; the suite runs twice, on GPU buffers through
// tests/staged_communicator.h and on host buffers, which nccl stages itself; where fewer GPUs
// are usable than ranks on the node, every rank prints "SKIP: ..." and exits 0). The same checks
// as mpi_conformance (every op, dtype and count, in place and not, NaN, wrap-around, broadcast from
// every root, all_gather, reduce_scatter, barrier), which also covers mpi's algorithm variants.
// All ranks agree on the failure count; an exception on any rank ends the job through MPI_Abort.
#include <mpi.h>

#include <cstdio>
#include <exception>
#include <memory>
#include <string>

#include "comm/communicator.h"
#include "comm/nccl_communicator.h"
#include "comm_conformance.h"
#include "devices/cuda_support.h"
#include "devices/error.h"
#include "staged_communicator.h"

namespace {

// Rank among the processes of this node.
int local_rank() {
  MPI_Comm node = MPI_COMM_NULL;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  int rank = 0;
  MPI_Comm_rank(node, &rank);
  MPI_Comm_free(&node);
  return rank;
}

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (argc < 2 || argc > 3) {
    if (rank == 0) std::fprintf(stderr, "usage: backend_conformance BACKEND [PLUGIN_PATH]\n");
    MPI_Finalize();
    return 2;
  }
  dpt::conformance::Report report;
  report.rank = rank;
  const bool nccl = std::string(argv[1]) == "nccl";
  std::unique_ptr<dpt::Device> device;
  if (nccl) {
    // Every rank sees the same machine, so all skip or none does.
    const dpt::GpuProbe probe = dpt::probe_gpus();
    const int usable = static_cast<int>(dpt::usable_gpus(probe).size());
    const int local = local_rank();
    std::string unloadable;  // a GPU machine without libnccl.so.2 skips too
    try {
      dpt::nccl_version();
    } catch (const dpt::Error& error) {
      unloadable = error.what();
    }
    int enough = local < usable && unloadable.empty() ? 1 : 0, all_enough = 0;
    MPI_Allreduce(&enough, &all_enough, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (all_enough == 0) {
      if (rank == 0 && !unloadable.empty()) {
        std::printf("SKIP: NCCL cannot be loaded: %s\n", unloadable.c_str());
      } else if (rank == 0) {
        std::printf("SKIP: nccl needs one usable GPU per rank; %d usable%s%s\n", usable,
                    probe.reason.empty() ? "" : ": ", probe.reason.c_str());
      }
      MPI_Finalize();
      return 0;
    }
  }
  try {
    if (nccl) device = dpt::make_cuda_device(local_rank());
    dpt::proto::CommConfig config;
    config.set_backend(argv[1]);
    if (argc == 3) config.set_plugin_path(argv[2]);
    config.set_timeout_s(60);
    std::unique_ptr<dpt::Communicator> comm = dpt::make_communicator(config, device.get());
    report.expect(comm->backend().rfind(argv[1], 0) == 0,
                  "backend() is \"" + comm->backend() + "\", not " + argv[1]);
    report.expect(comm->rank() == rank && comm->size() == size, "rank or size differ from MPI's");
    report.expect(comm->device_memory() == nccl, "device_memory() is wrong");
    std::unique_ptr<dpt::Communicator> staged;
    if (comm->device_memory()) {
      staged = std::make_unique<dpt::conformance::StagedCommunicator>(*comm, *device);
    }
    dpt::conformance::SuiteOptions suite;
    suite.seed = 11;
    dpt::conformance::run_suite(staged ? *staged : *comm, report, suite);
    // Host buffers straight to a device-memory backend: its own staging (nccl: device scratch),
    // and for averages its division on the host.
    if (staged) dpt::conformance::run_suite(*comm, report, suite);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "rank %d: %s\n", rank, error.what());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  long failed_anywhere = 0;
  MPI_Allreduce(&report.failed, &failed_anywhere, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
  std::printf("rank %d/%d: %ld checks, %ld failed (%ld on all ranks)\n", rank, size, report.checks,
              report.failed, failed_anywhere);
  for (const std::string& failure : report.failures) std::printf("  %s\n", failure.c_str());
  std::fflush(stdout);
  MPI_Finalize();
  return failed_anywhere > 0 ? 1 : 0;
}
