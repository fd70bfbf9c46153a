// TransportCommunicator: agreement check, algorithm choice and deadline for every collective.
#include "comm/transport_communicator.h"

#include <cstring>

#include "comm/latency_all_reduce.h"
#include "comm/ring.h"
#include "devices/error.h"

namespace dpt {

TransportCommunicator::TransportCommunicator(Transport& transport, const CommOptions& options)
    : transport_(transport), options_(options) {
  DPT_CHECK(options.timeout_s > 0) << "comm: timeout_s must be > 0, got " << options.timeout_s;
}

RingOptions TransportCommunicator::ring_options() {
  RingOptions ring;
  // Automatic: the largest message MPI counts (one per block) on one node, else 1 MiB pieces.
  ring.chunk_bytes = options_.chunk_bytes > 0 ? options_.chunk_bytes
                     : one_node_              ? std::size_t{1} << 30
                                              : std::size_t{1} << 20;
  ring.tag = kRingTagBase;
  ring.scratch = &ring_scratch_;
  return ring;
}

template <typename Body>
void TransportCommunicator::run(CollectiveHeader header, bool check, Body body) {
  header.sequence = ++sequence_;
  header_of_run_ = header;
  const Clock::time_point deadline = deadline_after(options_.timeout_s);
  try {
    if (check && shm_ != nullptr) {
      shm_->check(header, deadline);
    } else if (check) {
      check_collective(transport_, header, deadline);
    }
    body(deadline);
  } catch (const CommTimeout& timeout) {
    throw collective_timeout_error(transport_, header, options_.timeout_s, timeout);
  }
}

void TransportCommunicator::take_device_memory(Device& device, bool library_reads_device_memory) {
  staging_ = std::make_unique<DeviceStaging>(device);
  library_reads_device_ = library_reads_device_memory;
}

void TransportCommunicator::device_all_reduce(const void* send, void* recv, std::size_t count,
                                              DType dtype, ReduceOp op, DeviceEvent* ready) {
  const std::size_t bytes = count * dtype_size(dtype);
  if (library_reads_device_ && on_device(send) && on_device(recv) && op != ReduceOp::kAvg &&
      native_handles(dtype, op, count)) {
    // kAvg is left out: its division (finish_average) runs on the host.
    if (send != recv && bytes > 0) staging_->device().copy(recv, send, bytes);
    // The library reads what the device's queued work writes (up to `ready` when given; an
    // apart copy into recv is queued now, so it needs the full fence).
    if (ready != nullptr && send == recv) {
      ready->wait();
    } else {
      staging_->fence();
    }
    if (size() == 1) return;
    run(make_header(CollectiveKind::kAllReduce, count, dtype, op), true,
        [&](Clock::time_point deadline) { native_all_reduce(recv, count, dtype, op, deadline); });
    return;
  }
  const void* send_host = on_device(send) ? staging_->to_host(send, bytes) : send;
  // When send was staged, this is the same buffer: the host all-reduce runs in place.
  void* recv_host = on_device(recv) ? staging_->host(bytes) : recv;
  all_reduce(send_host, recv_host, count, dtype, op);
  if (recv_host != recv) staging_->to_device(recv, recv_host, bytes);
}

void TransportCommunicator::all_reduce(const void* send, void* recv, std::size_t count, DType dtype,
                                       ReduceOp op) {
  DeviceEvent* ready = next_ready_;
  next_ready_ = nullptr;
  if (on_device(recv) || on_device(send)) {
    device_all_reduce(send, recv, count, dtype, op, ready);
    return;
  }
  const CollectiveHeader header = make_header(CollectiveKind::kAllReduce, count, dtype, op);
  const std::size_t bytes = count * dtype_size(dtype);
  if (size() == 1) {
    if (send != recv && bytes > 0) std::memcpy(recv, send, bytes);
    return;
  }
  const AllReduceAlgorithm algorithm = options_.all_reduce;
  if (algorithm == AllReduceAlgorithm::kAuto && shm_ != nullptr &&
      (bytes < options_.shm_threshold_bytes || (send == recv && shm_->shares(recv, bytes)))) {
    // Carries its own header check (every rank reads every header before reducing).
    run(header, false, [&](Clock::time_point deadline) {
      shm_->run(send, recv, count, dtype, op, header_of_run_, deadline);
    });
    return;
  }
  if (algorithm == AllReduceAlgorithm::kAuto && shm_ == nullptr &&
      bytes < options_.ring_threshold_bytes) {
    // Small: recursive doubling carries its own header check (no extra round trip).
    run(header, false, [&](Clock::time_point deadline) {
      recursive_doubling_all_reduce(transport_, send, recv, count, dtype, op, header_of_run_,
                                    deadline, kLatencyDataTag, latency_scratch_);
    });
    return;
  }
  run(header, true, [&](Clock::time_point deadline) {
    if (send != recv && bytes > 0) std::memcpy(recv, send, bytes);
    if (count == 0) return;
    if (algorithm == AllReduceAlgorithm::kNative &&
        native_all_reduce(recv, count, dtype, op, deadline)) {
      return;
    }
    ring_all_reduce(transport_, recv, count, dtype, op, deadline, ring_options());
  });
}

void TransportCommunicator::broadcast(void* buffer, std::size_t count, DType dtype, int root) {
  next_ready_ = nullptr;  // order_next_after is for the next collective only
  DPT_CHECK_AS(ErrorKind::kComm, root >= 0 && root < size())
      << "broadcast: root " << root << " outside a world of " << size();
  if (on_device(buffer)) {
    const std::size_t bytes = count * dtype_size(dtype);
    char* host = staging_->to_host(buffer, bytes);
    broadcast(host, count, dtype, root);
    staging_->to_device(buffer, host, bytes);
    return;
  }
  CollectiveHeader header = make_header(CollectiveKind::kBroadcast, count, dtype);
  header.root = root;
  run(header, true, [&](Clock::time_point deadline) {
    chain_broadcast(transport_, buffer, count, dtype, root, deadline, ring_options());
  });
}

void TransportCommunicator::all_gather(const void* send, void* recv, std::size_t count,
                                       DType dtype) {
  next_ready_ = nullptr;  // order_next_after is for the next collective only
  if (on_device(send) || on_device(recv)) {
    const std::size_t bytes = count * dtype_size(dtype);
    const std::size_t total = bytes * static_cast<std::size_t>(size());
    const void* send_host = on_device(send) ? staging_->to_host(send, bytes, 1) : send;
    char* recv_host = on_device(recv) ? staging_->host(total) : static_cast<char*>(recv);
    all_gather(send_host, recv_host, count, dtype);
    if (recv_host != recv) staging_->to_device(recv, recv_host, total);
    return;
  }
  const CollectiveHeader header = make_header(CollectiveKind::kAllGather, count, dtype);
  run(header, true, [&](Clock::time_point deadline) {
    const std::size_t bytes = count * dtype_size(dtype);
    char* own = static_cast<char*>(recv) + static_cast<std::size_t>(rank()) * bytes;
    if (send != own && bytes > 0) std::memmove(own, send, bytes);
    ring_all_gather(transport_, recv, count, dtype, deadline, ring_options());
  });
}

void TransportCommunicator::reduce_scatter(const void* send, void* recv, std::size_t count,
                                           DType dtype, ReduceOp op) {
  next_ready_ = nullptr;  // order_next_after is for the next collective only
  if (on_device(send) || on_device(recv)) {
    const std::size_t bytes = count * dtype_size(dtype);
    const std::size_t total = bytes * static_cast<std::size_t>(size());
    const void* send_host = on_device(send) ? staging_->to_host(send, total, 1) : send;
    char* recv_host = on_device(recv) ? staging_->host(bytes) : static_cast<char*>(recv);
    reduce_scatter(send_host, recv_host, count, dtype, op);
    if (recv_host != recv) staging_->to_device(recv, recv_host, bytes);
    return;
  }
  const CollectiveHeader header = make_header(CollectiveKind::kReduceScatter, count, dtype, op);
  run(header, true, [&](Clock::time_point deadline) {
    const std::size_t bytes = count * dtype_size(dtype);
    scratch_.resize(bytes * static_cast<std::size_t>(size()));
    if (!scratch_.empty()) std::memcpy(scratch_.data(), send, scratch_.size());
    ring_reduce_scatter(transport_, scratch_.data(), count, dtype, op, deadline, ring_options());
    if (bytes > 0) {
      std::memcpy(recv, scratch_.data() + static_cast<std::size_t>(rank()) * bytes, bytes);
    }
  });
}

void TransportCommunicator::barrier() {
  next_ready_ = nullptr;  // order_next_after is for the next collective only
  const CollectiveHeader header = make_header(CollectiveKind::kBarrier, 0, DType::kF32);
  run(header, true, [&](Clock::time_point deadline) {
    // The shared-memory check returns only once every rank has arrived: a barrier already.
    if (shm_ == nullptr) dissemination_barrier(transport_, deadline, ring_options());
  });
}

std::shared_ptr<void> TransportCommunicator::allocate_shared(std::size_t bytes) {
  shared_problem_.clear();
  if (shm_ == nullptr) return nullptr;
  const uint64_t mine = bytes;
  std::vector<uint64_t> sizes(static_cast<std::size_t>(size()));
  all_gather(&mine, sizes.data(), 1, DType::kI64);
  // Ranks that disagree all get null (each sees every size); the caller's own checks (the
  // trainer's fingerprint of model shapes) then name the difference.
  for (std::size_t r = 0; r < sizes.size(); ++r) {
    if (sizes[r] == mine) continue;
    shared_problem_ = "rank " + std::to_string(r) + " asked for " + std::to_string(sizes[r]) +
                      " bytes, rank " + std::to_string(rank()) + " for " + std::to_string(mine);
    return nullptr;
  }
  if (bytes == 0) return nullptr;
  std::vector<char*> bases;
  std::shared_ptr<void> memory = map_shared(bytes, bases, shared_problem_);
  if (memory == nullptr) return nullptr;
  shm_->add_shared_buffer(std::move(bases), bytes, memory);
  return memory;
}

}  // namespace dpt
