// The "mpi" backend: Open MPI underneath dpt's TransportCommunicator. dpt's algorithms run over
// MPI point-to-point (Open MPI's large-message all-reduce collapses on these machines: README,
// "Collective benchmark"); comm.all_reduce: ALL_REDUCE_NATIVE uses MPI_Iallreduce instead. Every
// MPI call is nonblocking and polled against the collective's deadline, so a hung or dead peer
// gives an error instead of a hang. abort() is MPI_Abort.
// MPI must be initialised (launch/world.h's MpiSession) before one is made and finalised after.
#pragma once

#include <memory>
#include <string>

#include "comm/communicator.h"

namespace dpt {

// A communicator over a duplicate of MPI_COMM_WORLD (errors returned, not fatal). Collective.
// `device`: the worker's device. When every rank's is a CUDA device and options.
// mpi_device_buffers lets it (by default: the MPI is CUDA-aware and reduces device memory in
// nonblocking collectives, mpi_reduces_device_memory(); never with Open MPI), the
// communicator takes device memory (device_memory() true): all-reduces MPI does exactly (sum,
// integer max/min; not avg, bf16/fp16 or float max/min) run as MPI_Iallreduce on the device
// pointers; every other collective on device memory is staged through page-locked host memory.
std::unique_ptr<Communicator> make_mpi_communicator(const CommOptions& options,
                                                    Device* device = nullptr);

// True when MPI has been initialised in this process and not finalised.
bool mpi_active();

// Whether the MPI library can move CUDA device buffers itself (CUDA-aware MPI): Open MPI's
// MPIX_Query_cuda_support, looked up with dlsym so MPIs without it (answer: false) link too.
// Meaningful after MPI_Init. Debian's Open MPI 4.1 is built without CUDA: false there.
bool mpi_cuda_aware();

// Whether the MPI library named by `library_version` (MPI_Get_library_version's text) may be
// given CUDA device memory in a nonblocking reduction (MPI_Iallreduce), when it is CUDA-aware.
// An allow-list, since staging is always correct and device memory only saves copies: MVAPICH
// (MVAPICH2-GDR, MVAPICH-Plus) and Cray MPICH, whose GPU support covers nonblocking collectives.
// Not Open MPI: its CUDA support covers point-to-point and blocking collectives only (its docs,
// "Which MPI APIs do NOT work with CUDA-aware"); MPI_Iallreduce on device memory makes libnbc
// reduce device pointers on the host and crash (open-mpi/ompi#9845, #12045). Not plain MPICH or
// an unknown library either (pmodels/mpich#5643: GPU-buffer all-reduce crashes in 3.4 and 4.0).
bool nonblocking_reductions_take_device_memory(const std::string& library_version);

// mpi_cuda_aware(), and this process's MPI library passes the check above: what
// comm.cuda_aware_mpi (MpiDeviceBuffers::kCudaAwareMpi) takes device memory on.
bool mpi_reduces_device_memory();

}  // namespace dpt
