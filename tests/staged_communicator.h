// A host-memory Communicator in front of one whose buffers are device memory (nccl), so the
// host-memory conformance suite (tests/comm_conformance.h) checks device backends unchanged. Each
// call copies its host buffers to fresh device buffers (sentinel bytes where the backend only
// writes), runs the collective on them, and copies every buffer back, the send buffer included:
// the host buffers then show what the backend did to the device ones, so the suite's "the send
// buffer changed" and in-place checks keep their meaning.
#pragma once

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "devices/device.h"

namespace dpt::conformance {

class StagedCommunicator : public Communicator {
 public:
  // `inner` and `device` must outlive this object.
  StagedCommunicator(Communicator& inner, Device& device) : inner_(inner), device_(device) {}

  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  std::string backend() const override { return inner_.backend(); }

  void all_reduce(const void* send, void* recv, std::size_t count, DType dtype,
                  ReduceOp op) override {
    const std::size_t bytes = count * dtype_size(dtype);
    if (send == recv) {
      Staged buffer(device_, recv, bytes);
      inner_.all_reduce(buffer.device, buffer.device, count, dtype, op);
      return;
    }
    Staged in(device_, const_cast<void*>(send), bytes);
    Staged out(device_, recv, bytes);
    inner_.all_reduce(in.device, out.device, count, dtype, op);
  }
  void broadcast(void* buffer, std::size_t count, DType dtype, int root) override {
    Staged staged(device_, buffer, count * dtype_size(dtype));
    inner_.broadcast(staged.device, count, dtype, root);
  }
  void all_gather(const void* send, void* recv, std::size_t count, DType dtype) override {
    const std::size_t block = count * dtype_size(dtype);
    Staged out(device_, recv, block * size());
    char* mine = static_cast<char*>(out.device) + block * rank();
    if (send == static_cast<char*>(recv) + block * rank()) {
      inner_.all_gather(mine, out.device, count, dtype);
      return;
    }
    Staged in(device_, const_cast<void*>(send), block);
    inner_.all_gather(in.device, out.device, count, dtype);
  }
  void reduce_scatter(const void* send, void* recv, std::size_t count, DType dtype,
                      ReduceOp op) override {
    const std::size_t block = count * dtype_size(dtype);
    Staged in(device_, const_cast<void*>(send), block * size());
    Staged out(device_, recv, block);
    inner_.reduce_scatter(in.device, out.device, count, dtype, op);
  }
  void barrier() override { inner_.barrier(); }
  void abort(int exit_code) noexcept override { inner_.abort(exit_code); }

 private:
  // A device copy of `bytes` host bytes at `host`, copied back over them when it goes.
  struct Staged {
    Staged(Device& device_ref, void* host_ptr, std::size_t size)
        : device_of(device_ref), host(host_ptr), bytes(size) {
      device = device_of.allocate(bytes > 0 ? bytes : 1);
      if (bytes > 0) device_of.copy_from_host(device, host, bytes);
    }
    ~Staged() {
      // A destructor must not throw (a failed copy here means a broken GPU, which the next
      // check reports): the copy back's error is dropped.
      try {
        if (bytes > 0) device_of.copy_to_host(host, device, bytes);
      } catch (...) {
      }
      device_of.deallocate(device);
    }
    Staged(const Staged&) = delete;
    Staged& operator=(const Staged&) = delete;
    Device& device_of;
    void* host;
    std::size_t bytes;
    void* device = nullptr;
  };

  Communicator& inner_;
  Device& device_;
};

}  // namespace dpt::conformance
