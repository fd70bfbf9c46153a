// NcclCommunicator (comm/nccl_communicator_impl.h): bootstrap over MPI, one non-blocking NCCL
// communicator, a communication stream ordered with the compute stream by events, and every wait
// bounded by the watchdog poll loop.
#include "comm/nccl_communicator.h"

#include <mpi.h>

#include <algorithm>
#include <exception>
#include <thread>
#include <vector>

#include "comm/mpi_check.h"
#include "comm/mpi_communicator.h"
#include "comm/nccl_bootstrap.h"
#include "comm/nccl_communicator_impl.h"

namespace dpt {

NcclCommunicator::NcclCommunicator(const CommOptions& options, CudaDevice& device)
    : device_(device), timeout_s_(options.timeout_s) {
  if (mpi_active()) {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  try {
    make_current();
    int low = 0, high = 0;
    CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&low, &high));
    CUDA_CHECK(cudaStreamCreateWithPriority(&stream_, cudaStreamNonBlocking, high));
    CUDA_CHECK(cudaEventCreateWithFlags(&compute_ready_, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventCreateWithFlags(&comm_done_, cudaEventDisableTiming));
    CUDA_CHECK(cudaMalloc(&headers_, sizeof(HeaderWords) * (size_ + 1)));
    // Pinned, so the agreement check's copies are asynchronous and the watchdog bounds them.
    CUDA_CHECK(cudaMallocHost(&host_headers_, sizeof(HeaderWords) * (size_ + 1)));
    const ncclUniqueId id = bootstrap_id(nccl_, rank_, timeout_s_);
    if (mpi_active() && size_ > 1) {
      MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &diagnosis_comm_)) << "nccl: set-up";
      MPI_CHECK(MPI_Comm_set_errhandler(diagnosis_comm_, MPI_ERRORS_RETURN)) << "nccl: set-up";
      diagnosis_ = std::make_unique<MpiTransport>(diagnosis_comm_, diagnosis_mutex_);
    }
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    const Clock::time_point deadline = deadline_after(timeout_s_);
    check(nccl_.comm_init_rank_config(&comm_, size_, id, rank_, &config),
          "creating the communicator", deadline);
  } catch (...) {
    release();
    throw;
  }
}

NcclCommunicator::~NcclCommunicator() {
  cuda_clear_error(cudaSetDevice(device_.index()));
  // Destroyed by an exception (this rank failed; its peers may wait in a collective it will never
  // join): finalize would wait for them for up to comm.timeout_s, and ncclCommDestroy is
  // collective within the node. Abort instead, bounded, so the error is reported at once.
  if (std::uncaught_exceptions() > 0) abort_comm();
  if (comm_ != nullptr && !aborted_) {
    // Finalize flushes outstanding work; bounded like a collective, then destroy (or abort).
    const ncclResult_t finalize = nccl_.comm_finalize(comm_);
    const Clock::time_point deadline = deadline_after(timeout_s_);
    ncclResult_t state = finalize == ncclInProgress ? ncclInProgress : finalize;
    while (state == ncclInProgress && Clock::now() < deadline &&
           nccl_.comm_get_async_error(comm_, &state) == ncclSuccess) {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    if (state == ncclSuccess) {
      nccl_.comm_destroy(comm_);
    } else {
      // A peer that never finalizes (or an error): ncclCommAbort, bounded as every abort here,
      // since it waits for NCCL's streams and proxy thread that the same peer may hold.
      abort_comm();
    }
  }
  release();
}

void NcclCommunicator::order_next_after(DeviceEvent& ready) {
  auto* event = dynamic_cast<CudaEvent*>(&ready);
  DPT_CHECK(event != nullptr) << "nccl: order_next_after needs an event of the CUDA device";
  next_ready_ = event->event();
}

void NcclCommunicator::all_reduce(const void* send, void* recv, std::size_t count, DType dtype,
                                  ReduceOp op) {
  const bool extremum = op == ReduceOp::kMax || op == ReduceOp::kMin;
  // Taken at every world size, one rank too (a one-rank gather is a copy), so the world of one
  // a single GPU gives still runs this path.
  if (extremum && dtype != DType::kI32 && dtype != DType::kI64) {
    gathered_extremum(send, recv, count, dtype, op);
    return;
  }
  const std::size_t bytes = count * dtype_size(dtype);
  const ncclRedOp_t nccl_op = nccl_reduce_op(op, dtype, size_);
  Staged in = stage(send, bytes, recv, bytes);
  run(make_header(CollectiveKind::kAllReduce, count, dtype, op), [&] {
    copy_in(in, send, bytes);
    return nccl_.all_reduce(in.send, in.recv, count, nccl_dtype(dtype), nccl_op, comm_, stream_);
  });
  copy_out(in, recv, bytes);
  if (op == ReduceOp::kAvg && nccl_op != ncclAvg) divide_by_size(in, recv, count, dtype);
}

void NcclCommunicator::broadcast(void* buffer, std::size_t count, DType dtype, int root) {
  DPT_CHECK(root >= 0 && root < size_)
      << "nccl: broadcast root " << root << " is not a rank of " << size_;
  CollectiveHeader header = make_header(CollectiveKind::kBroadcast, count, dtype);
  header.root = root;
  const std::size_t bytes = count * dtype_size(dtype);
  Staged in = stage(buffer, bytes, buffer, bytes);
  run(header, [&] {
    copy_in(in, buffer, bytes);
    return nccl_.broadcast(in.send, in.recv, count, nccl_dtype(dtype), root, comm_, stream_);
  });
  copy_out(in, buffer, bytes);
}

void NcclCommunicator::all_gather(const void* send, void* recv, std::size_t count, DType dtype) {
  const std::size_t bytes = count * dtype_size(dtype), total = bytes * size_;
  Staged in = stage(send, bytes, recv, total);
  run(make_header(CollectiveKind::kAllGather, count, dtype), [&] {
    copy_in(in, send, bytes);
    return nccl_.all_gather(in.send, in.recv, count, nccl_dtype(dtype), comm_, stream_);
  });
  copy_out(in, recv, total);
}

void NcclCommunicator::reduce_scatter(const void* send, void* recv, std::size_t count, DType dtype,
                                      ReduceOp op) {
  const std::size_t bytes = count * dtype_size(dtype), total = bytes * size_;
  const ncclRedOp_t nccl_op = nccl_reduce_op(op, dtype, size_);
  Staged in = stage(send, total, recv, bytes);
  run(make_header(CollectiveKind::kReduceScatter, count, dtype, op), [&] {
    copy_in(in, send, total);
    return nccl_.reduce_scatter(in.send, in.recv, count, nccl_dtype(dtype), nccl_op, comm_,
                                stream_);
  });
  copy_out(in, recv, bytes);
  if (op == ReduceOp::kAvg && nccl_op != ncclAvg) divide_by_size(in, recv, count, dtype);
}

void NcclCommunicator::barrier() {
  run(make_header(CollectiveKind::kBarrier, 0, DType::kF32), [] { return ncclSuccess; });
}

void NcclCommunicator::abort(int exit_code) noexcept {
  abort_requested_ = true;
  if (mutex_.try_lock()) {  // no collective in flight: abort here (else its poll loop does)
    abort_comm();
    mutex_.unlock();
  }
  if (mpi_active()) MPI_Abort(MPI_COMM_WORLD, exit_code);
}

void NcclCommunicator::release() noexcept {
  diagnosis_.reset();
  if (diagnosis_comm_ != MPI_COMM_NULL && mpi_active()) MPI_Comm_free(&diagnosis_comm_);
  // An abort still running may use the rest (NCCL's kernels on stream_, the buffers): it is left
  // to the process's end, which is near.
  if (abort_done_ && !abort_done_->load()) return;
  if (pinned_ != nullptr) cuda_clear_error(cudaFreeHost(pinned_));
  if (scratch_ != nullptr) device_.deallocate(scratch_);
  if (host_headers_ != nullptr) cuda_clear_error(cudaFreeHost(host_headers_));
  if (headers_ != nullptr) cuda_clear_error(cudaFree(headers_));
  if (comm_done_ != nullptr) cuda_clear_error(cudaEventDestroy(comm_done_));
  if (compute_ready_ != nullptr) cuda_clear_error(cudaEventDestroy(compute_ready_));
  if (stream_ != nullptr) cuda_clear_error(cudaStreamDestroy(stream_));
}

void NcclCommunicator::abort_comm() noexcept {
  if (comm_ == nullptr || aborted_.exchange(true)) return;
  // The thread gets copies only (it may outlive this object): libnccl stays loaded (NcclLibrary
  // loads it for good), and the communicator is NCCL's.
  auto done = std::make_shared<std::atomic<bool>>(false);
  abort_done_ = done;
  try {
    std::thread([abort = nccl_.comm_abort, comm = comm_, gpu = device_.index(), done] {
      cuda_clear_error(cudaSetDevice(gpu));
      abort(comm);
      done->store(true);
    }).detach();
  } catch (...) {  // no thread to be had: abort here, unbounded
    nccl_.comm_abort(comm_);
    done->store(true);
    return;
  }
  // At least 5 s (a healthy GPU may take a moment to stop NCCL's kernels: with a short
  // comm.timeout_s it would otherwise be abandoned for nothing), at most 30 s.
  const Clock::time_point deadline = deadline_after(std::clamp(timeout_s_, 5.0, 30.0));
  while (!done->load() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // NCCL's kernels may still run: freeing device or page-locked memory would wait for them.
  if (!done->load()) device_.abandon();
}

void NcclCommunicator::wait_stream(const std::string& what, Clock::time_point deadline) {
  CUDA_CHECK(cudaEventRecord(comm_done_, stream_));
  stream_error_.clear();
  watch(what, deadline, [this] {
    // "Not ready" (and any other failure) is recorded as the thread's last CUDA error, which the
    // next kernel launch's check (cudaGetLastError) would report as its own failure: clear it
    // (PyTorch does too). A sticky error stays: every later call reports it anyway.
    const cudaError_t state = cuda_clear_error(cudaEventQuery(comm_done_));
    // A real error (a faulting kernel) goes through the watchdog's failure path, which aborts
    // the communicator, instead of escaping it.
    if (state != cudaSuccess && state != cudaErrorNotReady) {
      stream_error_ = std::string("the communication stream failed: ") + cudaGetErrorName(state) +
                      " (" + cudaGetErrorString(state) + ")";
    }
    return state == cudaSuccess;
  });
}

void NcclCommunicator::check(ncclResult_t result, const std::string& what,
                             Clock::time_point deadline) {
  if (result == ncclSuccess) return;
  if (result != ncclInProgress) fail(what, result);
  ncclResult_t state = ncclInProgress;
  watch(what, deadline, [this, &state] {
    // After an abort (another thread's abort(), which frees the communicator) the wait ends
    // through the hooks' abort_requested, never by reading the freed communicator.
    if (!comm_alive()) return false;
    nccl_.comm_get_async_error(comm_, &state);
    return state != ncclInProgress;
  });
  if (state != ncclSuccess) fail(what, state);
}

void NcclCommunicator::fail(const std::string& what, ncclResult_t result) {
  const std::string reason = nccl_.describe(result, comm_);
  abort_comm();
  DPT_THROW(ErrorKind::kComm) << "nccl: " << what << " on rank " << rank_ << " failed: " << reason
                              << "; communicator aborted";
}

std::string NcclCommunicator::missing_ranks() {
  try {
    const double grace_s = std::min(1.0, timeout_s_ / 4);
    const std::vector<int> missing =
        find_missing_ranks(*diagnosis_, in_flight_, deadline_after(grace_s));
    if (missing.empty()) return "every rank reached it";
    std::string text = "ranks that did not arrive: ";
    for (std::size_t i = 0; i < missing.size(); ++i) {
      text += (i > 0 ? ", " : "") + std::to_string(missing[i]);
    }
    return text;
  } catch (const std::exception& error) {
    return std::string("asking the others where they are failed: ") + error.what();
  }
}

void NcclCommunicator::check_agreement(const CollectiveHeader& header, const std::string& what,
                                       Clock::time_point deadline) {
  host_headers_[0] = encode_header(header);
  HeaderWords* gathered = headers_ + 1;
  CUDA_CHECK(cudaMemcpyAsync(headers_, host_headers_, sizeof(HeaderWords), cudaMemcpyHostToDevice,
                             stream_));
  check(nccl_.all_gather(headers_, gathered, host_headers_[0].size(), ncclUint64, comm_, stream_),
        what + " (agreement check)", deadline);
  CUDA_CHECK(cudaMemcpyAsync(host_headers_ + 1, gathered, sizeof(HeaderWords) * size_,
                             cudaMemcpyDeviceToHost, stream_));
  wait_stream(what + " (agreement check)", deadline);
  for (int peer = 0; peer < size_; ++peer) {
    check_header(header, rank_, host_headers_[1 + peer], peer);
  }
}

std::unique_ptr<Communicator> make_nccl_communicator(const CommOptions& options, Device* device) {
  auto* cuda = dynamic_cast<CudaDevice*>(device);
  DPT_CHECK_AS(ErrorKind::kConfig, cuda != nullptr)
      << "comm.backend: \"nccl\" needs workers that own CUDA devices (device { kind: CUDA }); "
         "this worker runs on "
      << (device != nullptr ? device->name() : std::string("no device"));
  return std::make_unique<NcclCommunicator>(options, *cuda);
}

bool nccl_built() { return true; }

std::string nccl_version() { return NcclLibrary().version(); }

}  // namespace dpt
