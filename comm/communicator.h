// The Communicator interface: the one collective layer through which workers average gradients.
// Call shape follows NCCL: (send, recv, count, dtype, op); in place when send == recv. Every rank
// must make the same calls in the same order with the same counts. Backends are whole files
// (local_communicator.cpp now; mpi and nccl with the data-parallel issues), built by
// make_communicator() from the config.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "core/config.pb.h"
#include "core/tensor.h"

namespace dpt {

enum class ReduceOp { kSum, kAvg, kMax, kMin };

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Backend name, e.g. "local".
  virtual std::string backend() const = 0;
  // recv[i] = op over ranks of send[i], for i < count, on every rank.
  virtual void all_reduce(const void* send, void* recv, std::size_t count, DType dtype,
                          ReduceOp op) = 0;
  // buffer on every rank = buffer on `root`.
  virtual void broadcast(void* buffer, std::size_t count, DType dtype, int root) = 0;
  // recv = concatenation over ranks (in rank order) of each rank's `count` elements of send.
  virtual void all_gather(const void* send, void* recv, std::size_t count, DType dtype) = 0;
  // Returns when every rank has called barrier().
  virtual void barrier() = 0;
  // Tears the world down so peers blocked in collectives fail fast; safe to call at any time.
  virtual void abort() noexcept = 0;
};

// Builds the backend the config names ("auto" and "local" give a world of one for now).
std::unique_ptr<Communicator> make_communicator(const proto::CommConfig& config);

}  // namespace dpt
