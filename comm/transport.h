// Point-to-point messaging between the ranks of a world: the layer our collective algorithms
// (comm/ring.h) are written on, so the same ring runs over MPI (comm/mpi_communicator.cpp) and over
// the in-process thread world used by the unit tests (comm/thread_world.h).
// Requests complete asynchronously; wait() gives up at a deadline instead of hanging.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace dpt {

using Clock = std::chrono::steady_clock;

// Opaque handle of one posted send or receive.
class Request {
 public:
  virtual ~Request() = default;
  // Bytes a completed receive got (irecv: its size; irecv_up_to: the message's length).
  std::size_t received() const { return received_; }
  void set_received(std::size_t bytes) { received_ = bytes; }

 private:
  std::size_t received_ = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Posts a send of `bytes` from `data` to `peer` with `tag`; `data` must stay valid until the
  // request completes. Messages between one pair with one tag arrive in order.
  virtual std::unique_ptr<Request> isend(const void* data, std::size_t bytes, int peer,
                                         int tag) = 0;
  // Posts a receive of exactly `bytes` into `data` from `peer` with `tag`.
  virtual std::unique_ptr<Request> irecv(void* data, std::size_t bytes, int peer, int tag) = 0;
  // Posts a receive of at most `capacity` bytes: a shorter message completes it too and
  // received() tells its length; a longer one fails it, as for irecv.
  virtual std::unique_ptr<Request> irecv_up_to(void* data, std::size_t capacity, int peer,
                                               int tag) = 0;
  // True when the request has completed (drives progress); never blocks for long.
  virtual bool test(Request& request) = 0;
  // Blocks until the request completes (true) or `deadline` passes (false).
  virtual bool wait(Request& request, Clock::time_point deadline) = 0;
};

}  // namespace dpt
