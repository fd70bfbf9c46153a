// NcclCommunicator's host-memory paths (comm/nccl_communicator_impl.h): host buffers staged
// through device scratch and a page-locked buffer, and the collectives whose last step runs on
// the host (averages divided by the world size; float max/min reduced from a gather, so NaN
// propagates as on the host backends).
#include <algorithm>
#include <cstring>
#include <vector>

#include "comm/nccl_communicator_impl.h"
#include "comm/reduce.h"

namespace dpt {

NcclCommunicator::Staged NcclCommunicator::stage(const void* send, std::size_t send_bytes,
                                                 void* recv, std::size_t recv_bytes) {
  make_current();  // is_device_pointer on a thread whose current device is another
  Staged staged{send, recv};
  staged.send_staged = send_bytes > 0 && !device_.is_device_pointer(send);
  staged.recv_staged = recv_bytes > 0 && !device_.is_device_pointer(recv);
  if (!staged.send_staged && !staged.recv_staged) return staged;
  const std::size_t send_room = (send_bytes + 255) / 256 * 256;
  if (send_room + recv_bytes > scratch_bytes_) {
    if (scratch_ != nullptr) device_.deallocate(scratch_);
    scratch_ = nullptr, scratch_bytes_ = 0;
    scratch_ = static_cast<char*>(device_.allocate(send_room + recv_bytes));
    scratch_bytes_ = send_room + recv_bytes;
  }
  pinned(std::max(send_bytes, recv_bytes));
  if (staged.send_staged) staged.send = scratch_;
  if (staged.recv_staged) {
    // In place stays in place.
    staged.recv = send == recv ? const_cast<void*>(staged.send) : scratch_ + send_room;
  }
  return staged;
}

char* NcclCommunicator::pinned(std::size_t bytes) {
  if (bytes > pinned_bytes_) {
    if (pinned_ != nullptr) cuda_clear_error(cudaFreeHost(pinned_));
    pinned_ = nullptr, pinned_bytes_ = 0;
    CUDA_CHECK(cudaMallocHost(&pinned_, bytes));
    pinned_bytes_ = bytes;
  }
  return static_cast<char*>(pinned_);
}

void NcclCommunicator::copy_in(const Staged& staged, const void* send, std::size_t bytes) {
  if (!staged.send_staged) return;
  std::memcpy(pinned_, send, bytes);
  CUDA_CHECK(cudaMemcpyAsync(const_cast<void*>(staged.send), pinned_, bytes, cudaMemcpyHostToDevice,
                             stream_));
}

void NcclCommunicator::copy_out(const Staged& staged, void* recv, std::size_t bytes) {
  if (!staged.recv_staged) return;
  std::lock_guard<std::mutex> lock(mutex_);
  make_current();
  CUDA_CHECK(cudaMemcpyAsync(pinned_, staged.recv, bytes, cudaMemcpyDeviceToHost, stream_));
  wait_stream("copying a result to host memory", deadline_after(timeout_s_));
  std::memcpy(recv, pinned_, bytes);
}

void NcclCommunicator::gathered_extremum(const void* send, void* recv, std::size_t count,
                                         DType dtype, ReduceOp op) {
  const std::size_t bytes = count * dtype_size(dtype);
  std::vector<char> all(bytes * static_cast<std::size_t>(size_));
  Staged in = stage(send, bytes, all.data(), all.size());
  run(make_header(CollectiveKind::kAllReduce, count, dtype, op), [&] {
    copy_in(in, send, bytes);
    return nccl_.all_gather(in.send, in.recv, count, nccl_dtype(dtype), comm_, stream_);
  });
  copy_out(in, all.data(), all.size());
  for (int peer = 1; peer < size_; ++peer) {
    reduce_into(all.data(), all.data() + static_cast<std::size_t>(peer) * bytes, count, dtype, op);
  }
  put(recv, all.data(), bytes);
}

void NcclCommunicator::put(void* recv, const void* host, std::size_t bytes) {
  if (bytes == 0) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (!device_.is_device_pointer(recv)) {
    std::memmove(recv, host, bytes);
    return;
  }
  make_current();
  std::memcpy(pinned(bytes), host, bytes);
  CUDA_CHECK(cudaMemcpyAsync(recv, pinned_, bytes, cudaMemcpyHostToDevice, stream_));
  // Like every collective: the result is in place (and the pinned buffer free) on return.
  wait_stream("copying a result to the device", deadline_after(timeout_s_));
}

void NcclCommunicator::divide_by_size(const Staged& staged, void* recv, std::size_t count,
                                      DType dtype) {
  // At every world size (finish_average divides by 1 as a no-op): a single GPU's world of one
  // runs the same round trip as a larger world.
  if (count == 0) return;
  if (staged.recv_staged) {  // copy_out already put the sum in host memory
    finish_average(recv, count, dtype, size_);
    return;
  }
  const std::size_t bytes = count * dtype_size(dtype);
  std::vector<char> sum(bytes);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    make_current();
    CUDA_CHECK(cudaMemcpyAsync(pinned(bytes), recv, bytes, cudaMemcpyDeviceToHost, stream_));
    wait_stream("copying a sum to host memory", deadline_after(timeout_s_));
    std::memcpy(sum.data(), pinned_, bytes);
  }
  finish_average(sum.data(), count, dtype, size_);
  put(recv, sum.data(), bytes);
}

}  // namespace dpt
