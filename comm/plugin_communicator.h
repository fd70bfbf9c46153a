// The "plugin" backend: a Communicator over a vendor collectives plug-in loaded from
// comm.plugin_path (comm/plugin_abi.h, comm/plugin_library.h). dpt bootstraps it over MPI (the
// plug-in's init gets an all-gather callback on a duplicate of MPI_COMM_WORLD, polled against
// comm.timeout_s), so like "mpi" it needs a process started by mpirun. Calls are serialised;
// averages are a plug-in sum divided here; plug-in failures become dpt::Error(kComm) with the
// plug-in's own message. abort() aborts the plug-in's communicator, then MPI_Abort ends the job.
#pragma once

#include <memory>

#include "comm/communicator.h"

namespace dpt {

// Loads options.plugin_path (throws kConfig: see PluginLibrary), then runs the plug-in's init
// on every rank of MPI_COMM_WORLD (throws kConfig without MPI, kComm when init fails).
std::unique_ptr<Communicator> make_plugin_communicator(const CommOptions& options);

}  // namespace dpt
