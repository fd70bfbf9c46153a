// The NCCL bootstrap: rank 0's ncclUniqueId on every rank, sent over MPI_COMM_WORLD (the only
// thing the nccl backend sends over MPI, apart from the missing-rank poll after a timeout).
// Compiled only with DPT_WITH_CUDA (needs nccl.h).
#pragma once

#include <nccl.h>

#include "comm/nccl_library.h"

namespace dpt {

// Rank 0 makes the id (ncclGetUniqueId); MPI_Ibcast polled against timeout_s so a rank that
// never starts gives kComm instead of a hang. Without MPI (a world of one) returns a fresh id.
ncclUniqueId bootstrap_id(const NcclLibrary& nccl, int rank, double timeout_s);

}  // namespace dpt
