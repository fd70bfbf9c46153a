// NcclCommunicator (comm/nccl_communicator.h): bootstrap over MPI, one non-blocking NCCL
// communicator, a communication stream ordered with the compute stream by events, and every wait
// bounded by the watchdog poll loop.
#include "comm/nccl_communicator.h"

#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "comm/collective_check.h"
#include "comm/mpi_check.h"
#include "comm/mpi_communicator.h"
#include "comm/mpi_transport.h"
#include "comm/nccl_bootstrap.h"
#include "comm/nccl_library.h"
#include "comm/nccl_watchdog.h"
#include "comm/reduce.h"
#include "devices/cuda/cuda_check.h"
#include "devices/cuda/cuda_device.h"
#include "devices/error.h"

namespace dpt {
namespace {

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(const CommOptions& options, CudaDevice& device)
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

  ~NcclCommunicator() override {
    cudaSetDevice(device_.index());
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
        nccl_.comm_abort(comm_);
      }
    }
    release();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "nccl"; }
  bool device_memory() const override { return true; }
  void order_next_after(DeviceEvent& ready) override {
    auto* event = dynamic_cast<CudaEvent*>(&ready);
    DPT_CHECK(event != nullptr) << "nccl: order_next_after needs an event of the CUDA device";
    next_ready_ = event->event();
  }

  void all_reduce(const void* send, void* recv, std::size_t count, DType dtype,
                  ReduceOp op) override {
    const bool extremum = op == ReduceOp::kMax || op == ReduceOp::kMin;
    // Taken at every world size, one rank too (a one-rank gather is a copy), so the world of one
    // a single GPU gives still runs this path.
    if (extremum && dtype != DType::kI32 && dtype != DType::kI64) {
      gathered_extremum(send, recv, count, dtype, op);
      return;
    }
    const std::size_t bytes = count * dtype_size(dtype);
    Staged in = stage(send, bytes, recv, bytes);
    run(make_header(CollectiveKind::kAllReduce, count, dtype, op), [&] {
      copy_in(in, send, bytes);
      return nccl_.all_reduce(in.send, in.recv, count, nccl_dtype(dtype), nccl_reduce_op(op), comm_,
                              stream_);
    });
    copy_out(in, recv, bytes);
    if (op == ReduceOp::kAvg) divide_by_size(in, recv, count, dtype);
  }
  void broadcast(void* buffer, std::size_t count, DType dtype, int root) override {
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
  void all_gather(const void* send, void* recv, std::size_t count, DType dtype) override {
    const std::size_t bytes = count * dtype_size(dtype), total = bytes * size_;
    Staged in = stage(send, bytes, recv, total);
    run(make_header(CollectiveKind::kAllGather, count, dtype), [&] {
      copy_in(in, send, bytes);
      return nccl_.all_gather(in.send, in.recv, count, nccl_dtype(dtype), comm_, stream_);
    });
    copy_out(in, recv, total);
  }
  void reduce_scatter(const void* send, void* recv, std::size_t count, DType dtype,
                      ReduceOp op) override {
    const std::size_t bytes = count * dtype_size(dtype), total = bytes * size_;
    Staged in = stage(send, total, recv, bytes);
    run(make_header(CollectiveKind::kReduceScatter, count, dtype, op), [&] {
      copy_in(in, send, total);
      return nccl_.reduce_scatter(in.send, in.recv, count, nccl_dtype(dtype), nccl_reduce_op(op),
                                  comm_, stream_);
    });
    copy_out(in, recv, bytes);
    if (op == ReduceOp::kAvg) divide_by_size(in, recv, count, dtype);
  }
  // The header exchange is itself an all_gather every rank must join: that is the barrier.
  void barrier() override {
    run(make_header(CollectiveKind::kBarrier, 0, DType::kF32), [] { return ncclSuccess; });
  }

  void abort(int exit_code) noexcept override {
    abort_requested_ = true;
    if (mutex_.try_lock()) {  // no collective in flight: abort here (else its poll loop does)
      abort_comm();
      mutex_.unlock();
    }
    if (mpi_active()) MPI_Abort(MPI_COMM_WORLD, exit_code);
  }

 private:
  void make_current() const { CUDA_CHECK(cudaSetDevice(device_.index())); }

  // Host buffers (the trainer's loss sums, fingerprints, resume checks: a few bytes each) go
  // through device scratch, since NCCL's kernels read device memory only: copied in through a
  // pinned buffer on stream_ before the collective, and out after it, every wait bounded as a
  // collective's. Device buffers are used as they are.
  struct Staged {
    const void* send;
    void* recv;
    bool send_staged = false, recv_staged = false;
  };
  Staged stage(const void* send, std::size_t send_bytes, void* recv, std::size_t recv_bytes) {
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
  // The page-locked buffer, grown to at least `bytes` (nothing is in flight on it between calls).
  char* pinned(std::size_t bytes) {
    if (bytes > pinned_bytes_) {
      if (pinned_ != nullptr) cudaFreeHost(pinned_);
      pinned_ = nullptr, pinned_bytes_ = 0;
      CUDA_CHECK(cudaMallocHost(&pinned_, bytes));
      pinned_bytes_ = bytes;
    }
    return static_cast<char*>(pinned_);
  }
  // Inside run(), after the agreement check: the host input into device scratch.
  void copy_in(const Staged& staged, const void* send, std::size_t bytes) {
    if (!staged.send_staged) return;
    std::memcpy(pinned_, send, bytes);
    CUDA_CHECK(cudaMemcpyAsync(const_cast<void*>(staged.send), pinned_, bytes,
                               cudaMemcpyHostToDevice, stream_));
  }
  // After run(): the result back into the host buffer.
  void copy_out(const Staged& staged, void* recv, std::size_t bytes) {
    if (!staged.recv_staged) return;
    std::lock_guard<std::mutex> lock(mutex_);
    make_current();
    CUDA_CHECK(cudaMemcpyAsync(pinned_, staged.recv, bytes, cudaMemcpyDeviceToHost, stream_));
    wait_stream("copying a result to host memory", deadline_after(timeout_s_));
    std::memcpy(recv, pinned_, bytes);
  }

  // Float max/min: NCCL's drop a NaN operand (fmaxf), dpt's propagate it (comm/reduce.h). So
  // every rank's values are gathered (one ncclAllGather under the all_reduce's header) and
  // reduced on the host with the host backends' operator. Only small host values take this path
  // (timings, memory budgets); its cost is size() times the data.
  void gathered_extremum(const void* send, void* recv, std::size_t count, DType dtype,
                         ReduceOp op) {
    const std::size_t bytes = count * dtype_size(dtype);
    std::vector<char> all(bytes * static_cast<std::size_t>(size_));
    Staged in = stage(send, bytes, all.data(), all.size());
    run(make_header(CollectiveKind::kAllReduce, count, dtype, op), [&] {
      copy_in(in, send, bytes);
      return nccl_.all_gather(in.send, in.recv, count, nccl_dtype(dtype), comm_, stream_);
    });
    copy_out(in, all.data(), all.size());
    for (int peer = 1; peer < size_; ++peer) {
      reduce_into(all.data(), all.data() + static_cast<std::size_t>(peer) * bytes, count, dtype,
                  op);
    }
    put(recv, all.data(), bytes);
  }
  // `bytes` of host memory into recv (device or host memory); returns once they are there.
  void put(void* recv, const void* host, std::size_t bytes) {
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

  // kAvg: NCCL summed (nccl_reduce_op); the division by the world size runs on the host, as on
  // the host backends (finish_average), so an average has their bits: ncclAvg multiplies each
  // input by 1/n in its own type first (bf16's 1/3 is 0.334), which differs from sum / n. A
  // device result makes the round trip through the page-locked buffer; no hot path averages
  // (gradients are summed).
  void divide_by_size(const Staged& staged, void* recv, std::size_t count, DType dtype) {
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

  // Frees what the constructor created (whatever it got to).
  void release() noexcept {
    diagnosis_.reset();
    if (diagnosis_comm_ != MPI_COMM_NULL && mpi_active()) MPI_Comm_free(&diagnosis_comm_);
    if (pinned_ != nullptr) cudaFreeHost(pinned_);
    if (scratch_ != nullptr) device_.deallocate(scratch_);
    if (host_headers_ != nullptr) cudaFreeHost(host_headers_);
    if (headers_ != nullptr) cudaFree(headers_);
    if (comm_done_ != nullptr) cudaEventDestroy(comm_done_);
    if (compute_ready_ != nullptr) cudaEventDestroy(compute_ready_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  // Whether comm_ may be used: made, and not freed by ncclCommAbort (abort() may run on another
  // thread while a collective waits; the wait then ends through abort_requested).
  bool comm_alive() const { return comm_ != nullptr && !aborted_; }

  void abort_comm() noexcept {
    if (comm_ != nullptr && !aborted_.exchange(true)) nccl_.comm_abort(comm_);
  }

  // Waits until the work queued on stream_ so far is done (or fails, or the deadline passes).
  void wait_stream(const std::string& what, Clock::time_point deadline) {
    CUDA_CHECK(cudaEventRecord(comm_done_, stream_));
    stream_error_.clear();
    watch(what, deadline, [this] {
      const cudaError_t state = cudaEventQuery(comm_done_);
      // "Not ready" is recorded as the thread's last CUDA error, which the next kernel launch's
      // check (cudaGetLastError) would report as its own failure: clear it (PyTorch does too).
      if (state == cudaErrorNotReady) cudaGetLastError();
      // A real error (a faulting kernel) goes through the watchdog's failure path, which aborts
      // the communicator, instead of escaping it.
      if (state != cudaSuccess && state != cudaErrorNotReady) {
        stream_error_ = std::string("the communication stream failed: ") + cudaGetErrorName(state) +
                        " (" + cudaGetErrorString(state) + ")";
      }
      return state == cudaSuccess;
    });
  }

  // An NCCL call's result in non-blocking mode: ncclInProgress until the communicator's state
  // (ncclCommGetAsyncError) leaves it.
  void check(ncclResult_t result, const std::string& what, Clock::time_point deadline) {
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
  // NCCL's last error text (process-wide in NCCL 2.28) is read before the abort, which may add
  // its own.
  [[noreturn]] void fail(const std::string& what, ncclResult_t result) {
    const std::string reason = nccl_.describe(result, comm_);
    abort_comm();
    DPT_THROW(ErrorKind::kComm) << "nccl: " << what << " on rank " << rank_ << " failed: " << reason
                                << "; communicator aborted";
  }

  template <typename Done>
  void watch(const std::string& what, Clock::time_point deadline, Done done) {
    WatchHooks hooks;
    hooks.done = done;
    hooks.failed = [this]() -> std::string {
      if (!stream_error_.empty()) return stream_error_;
      if (!comm_alive()) return "";
      ncclResult_t state = ncclSuccess;
      const ncclResult_t result = nccl_.comm_get_async_error(comm_, &state);
      if (result != ncclSuccess) return nccl_.describe(result, comm_);
      return state == ncclSuccess || state == ncclInProgress ? "" : nccl_.describe(state, comm_);
    };
    hooks.abort_requested = [this] { return abort_requested_.load(); };
    hooks.abort = [this] { abort_comm(); };
    if (diagnosis_ && in_flight_ > 0) hooks.missing = [this] { return missing_ranks(); };
    watch_until_done(what, rank_, timeout_s_, deadline, hooks);
  }

  // After a timeout: asks the other ranks over MPI how far they got (comm/collective_check.h).
  std::string missing_ranks() {
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

  // Every rank's header, compared on every rank (one all_gather of six words per rank).
  void check_agreement(const CollectiveHeader& header, const std::string& what,
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

  template <typename Enqueue>
  void run(CollectiveHeader header, Enqueue enqueue) {
    std::lock_guard<std::mutex> lock(mutex_);
    header.sequence = ++sequence_;
    in_flight_ = header.sequence;
    const std::string what = collective_label(header);
    DPT_CHECK_AS(ErrorKind::kComm, !aborted_ && !abort_requested_)
        << "nccl: " << what << " on rank " << rank_ << ": the communicator was aborted";
    const cudaEvent_t ready = next_ready_;
    next_ready_ = nullptr;
    const Clock::time_point deadline = deadline_after(timeout_s_);
    make_current();
    // The headers first: their exchange does not wait for the compute stream.
    if (size_ > 1) check_agreement(header, what, deadline);
    // The data is ready once the caller's event (order_next_after) has completed, else once the
    // compute stream's work queued so far has run.
    if (ready == nullptr) {
      CUDA_CHECK(cudaEventRecord(compute_ready_, device_.stream()));
    }
    CUDA_CHECK(cudaStreamWaitEvent(stream_, ready != nullptr ? ready : compute_ready_, 0));
    if (header.count > 0) check(enqueue(), what, deadline);
    wait_stream(what, deadline);
    // Later compute reads the result: order it after the collective on the device as well.
    CUDA_CHECK(cudaStreamWaitEvent(device_.stream(), comm_done_, 0));
    in_flight_ = 0;
  }

  NcclLibrary nccl_;
  CudaDevice& device_;
  double timeout_s_;
  int rank_ = 0;
  int size_ = 1;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t compute_ready_ = nullptr;
  cudaEvent_t comm_done_ = nullptr;
  HeaderWords* headers_ = nullptr;       // device: [0] this rank's header, [1, size] everyone's
  HeaderWords* host_headers_ = nullptr;  // pinned host copy of the same
  std::mutex mutex_;
  uint64_t sequence_ = 0;
  uint64_t in_flight_ = 0;  // the collective being waited for; 0: none (set-up)
  // MPI, for the missing-rank diagnosis after a timeout only (several processes).
  MPI_Comm diagnosis_comm_ = MPI_COMM_NULL;
  std::mutex diagnosis_mutex_;
  std::unique_ptr<MpiTransport> diagnosis_;
  std::atomic<bool> aborted_{false};
  std::atomic<bool> abort_requested_{false};
  std::string stream_error_;          // set by wait_stream's poll when the stream fails
  cudaEvent_t next_ready_ = nullptr;  // order_next_after's event, for the next collective
  char* scratch_ = nullptr;           // device: staged host buffers (stage())
  std::size_t scratch_bytes_ = 0;
  void* pinned_ = nullptr;  // page-locked: their way in and out
  std::size_t pinned_bytes_ = 0;
};

}  // namespace

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
