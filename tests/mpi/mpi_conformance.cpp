// The communicator conformance suite (tests/comm_conformance.h) on the "mpi" backend, run under
// `mpirun -np N`. Each rank runs the suite for several CommOptions, rank 0 also checks that the
// ring all-reduce over MPI gives the same bits as the thread world's ring with the same inputs,
// then all ranks agree on the failure count: every rank prints a summary and exits 1 when any
// rank failed. An exception on any rank ends the job through MPI_Abort (non-zero exit).
#include <mpi.h>

#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "comm/mpi_communicator.h"
#include "comm/thread_world.h"
#include "comm_conformance.h"

namespace {

using dpt::AllReduceAlgorithm;
using dpt::CommOptions;
using dpt::Communicator;
using dpt::DType;
using dpt::ReduceOp;
using dpt::conformance::Report;

struct Variant {
  const char* name;
  AllReduceAlgorithm algorithm;
  std::size_t chunk_bytes;
  std::size_t ring_threshold_bytes;
  bool large;
  std::size_t shm_threshold_bytes = CommOptions{}.shm_threshold_bytes;  // 0: no shared memory
};

const Variant kVariants[] = {
    {"auto", AllReduceAlgorithm::kAuto, 1 << 20, 256 << 10, true},
    {"ring_chunk64", AllReduceAlgorithm::kRing, 64, 256 << 10, false},
    {"native", AllReduceAlgorithm::kNative, 1 << 20, 256 << 10, true},
    {"auto_threshold4k_chunk4k", AllReduceAlgorithm::kAuto, 4096, 4096, false},
    // The message algorithms on one node (as across nodes): recursive doubling and the ring.
    {"auto_no_shm", AllReduceAlgorithm::kAuto, 0, 32 << 10, true, 0},
};

CommOptions options_of(const Variant& variant) {
  CommOptions options;
  options.timeout_s = 60;
  options.all_reduce = variant.algorithm;
  options.chunk_bytes = variant.chunk_bytes;
  options.ring_threshold_bytes = variant.ring_threshold_bytes;
  options.shm_threshold_bytes = variant.shm_threshold_bytes;
  return options;
}

// Fingerprint of an in-place all_reduce of every rank's random input, on `comm`.
uint64_t reduced_fingerprint(Communicator& comm, DType dtype, ReduceOp op, std::size_t count,
                             uint64_t seed) {
  std::vector<char> data = dpt::conformance::make_input(dtype, dpt::conformance::Pattern::kRandom,
                                                        seed, comm.rank(), count);
  comm.all_reduce(data.data(), data.data(), count, dtype, op);
  return dpt::conformance::fingerprint(data.data(), data.size());
}

// The ring over MPI and the ring over the thread world reduce in the same order, so they agree
// to the bit. Every rank takes part in the MPI all-reduces; rank 0 also runs the thread world.
void check_ring_matches_thread_world(Report& report) {
  const Variant ring{"ring", AllReduceAlgorithm::kRing, 4096, 0, false};
  std::unique_ptr<Communicator> comm = dpt::make_mpi_communicator(options_of(ring));
  const int n = comm->size();
  const std::size_t count = 10007;
  uint64_t seed = 500;
  for (DType dtype : {DType::kF32, DType::kF64, DType::kBF16, DType::kF16}) {
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg}) {
      ++seed;
      const uint64_t mpi = reduced_fingerprint(*comm, dtype, op, count, seed);
      if (comm->rank() != 0) continue;
      dpt::ThreadWorld world(n, options_of(ring));
      std::vector<uint64_t> threads(static_cast<std::size_t>(n));
      std::vector<std::string> errors(static_cast<std::size_t>(n));
      std::vector<std::thread> workers;
      for (int rank = 0; rank < n; ++rank) {
        workers.emplace_back([&, rank] {
          try {
            std::unique_ptr<Communicator> local = world.communicator(rank);
            threads[rank] = reduced_fingerprint(*local, dtype, op, count, seed);
          } catch (const std::exception& error) {
            errors[rank] = error.what();
          }
        });
      }
      for (std::thread& worker : workers) worker.join();
      const std::string what = std::string("ring all_reduce(count=10007, ") +
                               dpt::dtype_name(dtype) + ", " + dpt::reduce_op_name(op) + ")";
      for (int rank = 0; rank < n; ++rank) {
        report.expect(errors[rank].empty(), what + " on the thread world: " + errors[rank]);
        report.expect(
            threads[rank] == mpi,
            what + ": mpi and thread-world bits differ (thread rank " + std::to_string(rank) + ")");
      }
    }
  }
  comm->barrier();
}

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);

  Report total;
  total.rank = rank;
  std::string summary;
  try {
    for (const Variant& variant : kVariants) {
      std::unique_ptr<Communicator> comm = dpt::make_mpi_communicator(options_of(variant));
      Report report;
      total.expect(comm->backend() == "mpi", "backend() is \"" + comm->backend() + "\"");
      total.expect(comm->rank() == rank && comm->size() == size, "rank or size differ from MPI's");
      dpt::conformance::SuiteOptions suite;
      suite.seed = 7;
      suite.large = variant.large;
      dpt::conformance::run_suite(*comm, report, suite);
      summary += std::string(" ") + variant.name + ":" +
                 std::to_string(report.checks - report.failed) + "/" +
                 std::to_string(report.checks);
      total.checks += report.checks;
      total.failed += report.failed;
      for (const std::string& failure : report.failures) {
        if (total.failures.size() < Report::kMaxKept) {
          total.failures.push_back(std::string(variant.name) + ": " + failure);
        }
      }
    }
    Report ring;
    ring.rank = rank;
    check_ring_matches_thread_world(ring);
    summary += " ring_vs_threads:" + std::to_string(ring.checks - ring.failed) + "/" +
               std::to_string(ring.checks);
    total.checks += ring.checks;
    total.failed += ring.failed;
    total.failures.insert(total.failures.end(), ring.failures.begin(), ring.failures.end());
  } catch (const std::exception& error) {
    std::fprintf(stderr, "rank %d: %s\n", rank, error.what());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }

  long failed_anywhere = 0;
  MPI_Allreduce(&total.failed, &failed_anywhere, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
  std::printf("rank %d/%d: %ld checks, %ld failed (%ld on all ranks);%s\n", rank, size,
              total.checks, total.failed, failed_anywhere, summary.c_str());
  for (const std::string& failure : total.failures) std::printf("  %s\n", failure.c_str());
  std::fflush(stdout);
  MPI_Finalize();
  return failed_anywhere > 0 ? 1 : 0;
}
