// Checks for the small test programs run under mpirun (tests/mpi/*.cpp without GoogleTest): each
// rank counts and prints its failures; total_failures() sums them over the ranks, so every rank
// exits with the same status and rank 0 prints one summary line.
#pragma once

#include <mpi.h>

#include <cstdio>
#include <string>

namespace dpt::testing {

struct MpiExpect {
  int failures = 0;
  int rank = 0;
  void operator()(bool ok, const std::string& what) {
    if (ok) return;
    ++failures;
    std::fprintf(stderr, "rank %d: FAILED: %s\n", rank, what.c_str());
  }
  // Collective. Prints "<program>: N failures" on rank 0 and returns N.
  int total_failures(const char* program) const {
    int total = 0;
    MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) std::printf("%s: %d failures\n", program, total);
    return total;
  }
};

}  // namespace dpt::testing
