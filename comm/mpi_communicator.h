// The "mpi" backend: Open MPI underneath dpt's TransportCommunicator. dpt's algorithms run over
// MPI point-to-point (Open MPI's large-message all-reduce collapses on these machines: README,
// "Collective benchmark"); comm.all_reduce: ALL_REDUCE_NATIVE uses MPI_Iallreduce instead. Every
// MPI call is nonblocking and polled against the collective's deadline, so a hung or dead peer
// gives an error instead of a hang. abort() is MPI_Abort.
// MPI must be initialised (launch/world.h's MpiSession) before one is made and finalised after.
#pragma once

#include <memory>

#include "comm/communicator.h"

namespace dpt {

// A communicator over a duplicate of MPI_COMM_WORLD (errors returned, not fatal).
std::unique_ptr<Communicator> make_mpi_communicator(const CommOptions& options);

// True when MPI has been initialised in this process and not finalised.
bool mpi_active();

// Whether the MPI library can move CUDA device buffers itself (CUDA-aware MPI): Open MPI's
// MPIX_Query_cuda_support, looked up with dlsym so MPIs without it (answer: false) link too.
// Meaningful after MPI_Init. Reported only: the "mpi" backend reduces in host memory (its ring
// adds on the CPU), so its device_memory() stays false and GPU callers stage through the host.
bool mpi_cuda_aware();

}  // namespace dpt
