// Transport (comm/transport.h) over MPI point-to-point messages on one MPI communicator, so dpt's
// ring algorithms run over MPI. Also the polling wait every nonblocking MPI call of the "mpi"
// backend goes through: MPI_Test in a loop until the request completes or the deadline passes,
// never a blocking MPI call, so a hung peer cannot hang us (MPI itself would wait forever).
// Every MPI call is made while holding the mutex given to the constructor (the communicator's),
// which is what makes the backend safe under MPI_THREAD_SERIALIZED.
#pragma once

#include <mpi.h>

#include <mutex>

#include "comm/transport.h"

namespace dpt {

// How a waiting rank polls: back to back for the first `spin`, then yielding the CPU between
// polls (its peer may need this core: ranks often outnumber cores), then sleeping `nap` between
// polls once it has waited `sleep_after` (a slow peer; latency matters less than the CPU).
struct PollPolicy {
  Clock::duration spin = std::chrono::microseconds(50);
  Clock::duration sleep_after = std::chrono::milliseconds(2);
  Clock::duration nap = std::chrono::microseconds(50);
};

class MpiTransport : public Transport {
 public:
  // `comm` and `mutex` must outlive the transport and every request it returns.
  MpiTransport(MPI_Comm comm, std::mutex& mutex, PollPolicy policy = {});
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  // Messages are at most INT_MAX bytes (MPI's count); larger ones throw kComm.
  std::unique_ptr<Request> isend(const void* data, std::size_t bytes, int peer, int tag) override;
  // A message of another size than `bytes` from `peer` fails the receive with kComm naming
  // both sizes (never writes past `bytes`).
  std::unique_ptr<Request> irecv(void* data, std::size_t bytes, int peer, int tag) override;
  std::unique_ptr<Request> irecv_up_to(void* data, std::size_t capacity, int peer,
                                       int tag) override;
  bool test(Request& request) override;
  bool wait(Request& request, Clock::time_point deadline) override;

  // Polls a request of any nonblocking MPI call (MPI_Iallreduce, ...) under the mutex until it
  // completes (true; `request` becomes MPI_REQUEST_NULL) or `deadline` passes (false; the
  // request stays active). `what` names the call in error messages.
  bool wait_native(MPI_Request& request, Clock::time_point deadline, const char* what);

 private:
  MPI_Comm comm_;
  std::mutex& mutex_;
  PollPolicy policy_;
  int rank_ = 0;
  int size_ = 1;

  std::unique_ptr<Request> post_receive(void* data, std::size_t bytes, int peer, int tag,
                                        bool exact);
};

}  // namespace dpt
