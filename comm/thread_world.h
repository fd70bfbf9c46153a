// An in-process world of N ranks, one per thread: the "threads" backend the unit tests use to run
// every collective, the trainer and the fault paths with N ranks without mpirun. Messages are
// copied through mailboxes in shared memory; abort() by any rank makes every rank's pending and
// later waits throw kComm naming the rank that aborted.
#pragma once

#include <memory>

#include "comm/communicator.h"

namespace dpt {

class ThreadWorld {
 public:
  // With ALL_REDUCE_AUTO and `shared_memory`, the ranks also share memory regions, so all-reduce
  // and the agreement checks go through comm/shm_all_reduce.h as on one node under MPI; without,
  // the message-based algorithms run (as across nodes).
  ThreadWorld(int size, const CommOptions& options, bool shared_memory = true);
  ~ThreadWorld();
  ThreadWorld(const ThreadWorld&) = delete;
  ThreadWorld& operator=(const ThreadWorld&) = delete;

  int size() const;
  // Rank `rank`'s communicator; call once per rank, each used by its own thread. The world must
  // outlive every communicator it hands out.
  std::unique_ptr<Communicator> communicator(int rank);
  // The same, taking buffers in `device`'s memory too (device_memory() true; staged through host
  // memory, TransportCommunicator::take_device_memory); `device` must outlive it.
  std::unique_ptr<Communicator> communicator(int rank, Device& device);

  struct State;

 private:
  std::unique_ptr<State> state_;
  CommOptions options_;
};

}  // namespace dpt
