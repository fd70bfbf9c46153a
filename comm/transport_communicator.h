// A Communicator over a Transport: every collective checks that all ranks were asked for the same
// thing (comm/collective_check.h; small all-reduces carry the check in their messages) and runs
// dpt's algorithms, all against one deadline per collective: all-reduce through shared memory
// when every rank is on one node (comm/shm_all_reduce.h), else comm/latency_all_reduce.h below
// comm.ring_threshold_bytes and comm/ring.h from there up; or the backend library's own with
// ALL_REDUCE_NATIVE. A deadline that passes becomes dpt::Error(kComm) naming the collective, its
// sequence number and the ranks that did not arrive. The thread world and the MPI backend are this
// class plus a Transport. One thread at a time may call a communicator (the gradient-sync thread,
// or the main thread).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "comm/collective_check.h"
#include "comm/communicator.h"
#include "comm/device_staging.h"
#include "comm/ring.h"
#include "comm/shm_all_reduce.h"
#include "comm/transport.h"

namespace dpt {

class TransportCommunicator : public Communicator {
 public:
  // `transport` must outlive the communicator.
  TransportCommunicator(Transport& transport, const CommOptions& options);
  int rank() const override { return transport_.rank(); }
  int size() const override { return transport_.size(); }
  void all_reduce(const void* send, void* recv, std::size_t count, DType dtype,
                  ReduceOp op) override;
  void broadcast(void* buffer, std::size_t count, DType dtype, int root) override;
  void all_gather(const void* send, void* recv, std::size_t count, DType dtype) override;
  void reduce_scatter(const void* send, void* recv, std::size_t count, DType dtype,
                      ReduceOp op) override;
  void barrier() override;
  // With shared memory (all ranks on one node): agrees on `bytes`, maps a buffer per rank through
  // map_shared and registers it with the shared-memory all-reduce.
  std::shared_ptr<void> allocate_shared(std::size_t bytes) override;
  std::string shared_memory_problem() const override { return shared_problem_; }
  // True once take_device_memory() was called.
  bool device_memory() const override { return staging_ != nullptr; }
  // Used by all-reduces that the library reads from device memory (a host wait on `ready`
  // instead of on all the device's queued work); staged collectives still copy after all of it.
  void order_next_after(DeviceEvent& ready) override {
    if (staging_ != nullptr) next_ready_ = &ready;
  }

  const CommOptions& options() const { return options_; }
  // Lets callers pass buffers in `device`'s memory (device_memory() becomes true). Every
  // collective given device memory copies it through page-locked host memory around the host
  // algorithms (comm/device_staging.h), except all-reduces native_handles() with an op other
  // than kAvg when `library_reads_device_memory` (CUDA-aware MPI): those go to the library on
  // the device pointers, after the work queued on the device so far has finished.
  // `device` must outlive the communicator.
  void take_device_memory(Device& device, bool library_reads_device_memory);

 protected:
  // In-place all-reduce by the backend library, for messages the options route to it. Returns
  // false when the library cannot do this dtype/op (the ring is used instead); returns false
  // on timeout only through throwing CommTimeout. kAvg must leave the average.
  virtual bool native_all_reduce(void* data, std::size_t count, DType dtype, ReduceOp op,
                                 Clock::time_point deadline) {
    return false;
  }
  // Whether native_all_reduce does this dtype/op/count (true: it returns true for it).
  virtual bool native_handles(DType dtype, ReduceOp op, std::size_t count) const { return false; }
  // Collective: a zero-filled, 64-byte aligned buffer of `bytes` for this rank, with bases[j] set
  // to rank j's buffer as mapped in this process; null on every rank where there is none.
  // `why` says what failed when it returns null.
  virtual std::shared_ptr<void> map_shared(std::size_t bytes, std::vector<char*>& bases,
                                           std::string& why) {
    return nullptr;
  }
  // Gives the communicator a shared-memory all-reduce over every rank (all on one node), which
  // ALL_REDUCE_AUTO then uses at every size. Every rank must set it, or none.
  void use_shared_memory(std::unique_ptr<ShmAllReduce> shm) { shm_ = std::move(shm); }
  // Every rank runs on this node (the automatic chunk_bytes sends whole blocks then).
  void set_one_node(bool one_node) { one_node_ = one_node; }
  bool one_node() const { return one_node_; }

 private:
  // Checks agreement, then runs `body` with the collective's deadline; turns a timeout into
  // the error naming the ranks that did not arrive.
  // `check`: exchange headers first (algorithms that carry their own check skip it).
  template <typename Body>
  void run(CollectiveHeader header, bool check, Body body);
  RingOptions ring_options();
  // all_reduce where send or recv is device memory (take_device_memory).
  void device_all_reduce(const void* send, void* recv, std::size_t count, DType dtype, ReduceOp op,
                         DeviceEvent* ready);
  bool on_device(const void* ptr) const { return staging_ != nullptr && staging_->on_device(ptr); }

  Transport& transport_;
  CommOptions options_;
  uint64_t sequence_ = 0;
  CollectiveHeader header_of_run_;     // the running collective's header, sequence number included
  std::vector<char> scratch_;          // reduce_scatter's full-size buffer
  std::vector<char> ring_scratch_;     // the ring's reduction chunks, reused between calls
  std::vector<char> latency_scratch_;  // recursive doubling's buffers, reused between calls
  bool one_node_ = false;
  std::unique_ptr<ShmAllReduce> shm_;       // set when every rank shares this node's memory
  std::string shared_problem_;              // why the last allocate_shared gave null
  std::unique_ptr<DeviceStaging> staging_;  // set by take_device_memory
  bool library_reads_device_ = false;
  DeviceEvent* next_ready_ = nullptr;  // order_next_after's event, for the next collective
};

}  // namespace dpt
