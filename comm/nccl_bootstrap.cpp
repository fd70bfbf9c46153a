// bootstrap_id (comm/nccl_bootstrap.h).
#include "comm/nccl_bootstrap.h"

#include <mpi.h>

#include <chrono>
#include <thread>

#include "comm/collective_check.h"
#include "comm/mpi_check.h"
#include "comm/mpi_communicator.h"
#include "devices/error.h"

namespace dpt {

ncclUniqueId bootstrap_id(const NcclLibrary& nccl, int rank, double timeout_s) {
  ncclUniqueId id{};
  if (rank == 0) {
    const ncclResult_t result = nccl.get_unique_id(&id);
    DPT_CHECK_AS(ErrorKind::kComm, result == ncclSuccess)
        << "nccl: ncclGetUniqueId failed on rank 0: " << nccl.describe(result, nullptr);
  }
  if (!mpi_active()) return id;  // a world of one
  // The broadcast lands in heap memory that a timeout leaks on purpose: MPI may still write into
  // it after this function has thrown (a pending MPI_Ibcast cannot be cancelled), and a stack
  // buffer would by then belong to someone else.
  auto* landing = new ncclUniqueId(id);
  MPI_Request request = MPI_REQUEST_NULL;
  MPI_CHECK(MPI_Ibcast(landing, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD, &request))
      << "nccl: broadcasting the unique id";
  const Clock::time_point deadline = deadline_after(timeout_s);
  int done = 0;
  while (true) {
    MPI_CHECK(MPI_Test(&request, &done, MPI_STATUS_IGNORE)) << "nccl: broadcasting the unique id";
    if (done != 0) {
      id = *landing;
      delete landing;
      return id;
    }
    DPT_CHECK_AS(ErrorKind::kComm, Clock::now() < deadline)
        << "nccl: rank " << rank << " did not receive the unique id from rank 0 within "
        << timeout_s << " s (comm.timeout_s; did every rank start?)";
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

}  // namespace dpt
