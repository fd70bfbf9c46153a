// The communicator conformance suite (tests/comm_conformance.h) on any backend by name, as
// make_communicator builds it: `mpirun -np N backend_conformance BACKEND [PLUGIN_PATH]`, e.g.
// `local` (-np 1) or `plugin path/to/libdpt_gloo.so` (-np 1..4). The same checks as
// mpi_conformance (every op, dtype and count, in place and not, NaN, wrap-around, broadcast from
// every root, all_gather, reduce_scatter, barrier), which also covers mpi's algorithm variants.
// All ranks agree on the failure count; an exception on any rank ends the job through MPI_Abort.
#include <mpi.h>

#include <cstdio>
#include <exception>
#include <memory>
#include <string>

#include "comm/communicator.h"
#include "comm_conformance.h"

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
  try {
    dpt::proto::CommConfig config;
    config.set_backend(argv[1]);
    if (argc == 3) config.set_plugin_path(argv[2]);
    config.set_timeout_s(60);
    std::unique_ptr<dpt::Communicator> comm = dpt::make_communicator(config);
    report.expect(comm->backend().rfind(argv[1], 0) == 0,
                  "backend() is \"" + comm->backend() + "\", not " + argv[1]);
    report.expect(comm->rank() == rank && comm->size() == size, "rank or size differ from MPI's");
    dpt::conformance::SuiteOptions suite;
    suite.seed = 11;
    dpt::conformance::run_suite(*comm, report, suite);
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
