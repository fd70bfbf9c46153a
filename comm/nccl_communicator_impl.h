// NcclCommunicator, the class behind make_nccl_communicator (comm/nccl_communicator.h), internal
// to the nccl backend: its set-up, collectives and waits are in nccl_communicator.cpp, its
// host-memory paths (host buffers staged through device scratch; averages and float max/min
// finished on the host) in nccl_host_paths.cpp. Built only with CUDA and NCCL's header.
// Collectives on host buffers share one staging buffer: they come from one thread at a time (the
// trainer's main thread between steps; GradSync's thread passes device memory only), and so do
// order_next_after and the collective after it.
#pragma once

#include <mpi.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "comm/collective_check.h"
#include "comm/communicator.h"
#include "comm/mpi_transport.h"
#include "comm/nccl_library.h"
#include "comm/nccl_watchdog.h"
#include "devices/cuda/cuda_check.h"
#include "devices/cuda/cuda_device.h"
#include "devices/error.h"

namespace dpt {

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(const CommOptions& options, CudaDevice& device);

  ~NcclCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "nccl"; }
  bool device_memory() const override { return true; }
  void order_next_after(DeviceEvent& ready) override;

  void all_reduce(const void* send, void* recv, std::size_t count, DType dtype,
                  ReduceOp op) override;
  void broadcast(void* buffer, std::size_t count, DType dtype, int root) override;
  void all_gather(const void* send, void* recv, std::size_t count, DType dtype) override;
  void reduce_scatter(const void* send, void* recv, std::size_t count, DType dtype,
                      ReduceOp op) override;
  // The header exchange is itself an all_gather every rank must join: that is the barrier.
  void barrier() override;

  void abort(int exit_code) noexcept override;

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
  Staged stage(const void* send, std::size_t send_bytes, void* recv, std::size_t recv_bytes);
  // The page-locked buffer, grown to at least `bytes` (nothing is in flight on it between calls).
  char* pinned(std::size_t bytes);
  // Inside run(), after the agreement check: the host input into device scratch.
  void copy_in(const Staged& staged, const void* send, std::size_t bytes);
  // After run(): the result back into the host buffer.
  void copy_out(const Staged& staged, void* recv, std::size_t bytes);

  // Float max/min: NCCL's drop a NaN operand (fmaxf), dpt's propagate it (comm/reduce.h). So
  // every rank's values are gathered (one ncclAllGather under the all_reduce's header) and
  // reduced on the host with the host backends' operator. Only small host values take this path
  // (timings, memory budgets); its cost is size() times the data.
  void gathered_extremum(const void* send, void* recv, std::size_t count, DType dtype, ReduceOp op);
  // `bytes` of host memory into recv (device or host memory); returns once they are there.
  void put(void* recv, const void* host, std::size_t bytes);

  // kAvg where ncclAvg is not sum / n (nccl_average_is_exact: fp16, integers, sizes that are not
  // powers of two): NCCL summed (nccl_reduce_op gives ncclSum); the division by the world size runs
  // on the host, as on the host backends (finish_average), so an average has their bits. A device
  // result makes the round trip through the page-locked buffer; no hot path averages (gradients
  // are summed).
  void divide_by_size(const Staged& staged, void* recv, std::size_t count, DType dtype);

  // Frees what the constructor created (whatever it got to).
  void release() noexcept;

  // Whether comm_ may be used: made, and not freed by ncclCommAbort (abort() may run on another
  // thread while a collective waits; the wait then ends through abort_requested).
  bool comm_alive() const { return comm_ != nullptr && !aborted_; }

  // ncclCommAbort, bounded: it waits for NCCL's streams and joins its proxy thread, which a peer
  // stuck outside NCCL (or work held on the device) can block for ever. It runs on a thread of
  // its own, waited for comm.timeout_s clamped to [5, 30] s; past that this rank goes on to report
  // its error (the process is ending: main's MPI_Abort), and release() leaves the device memory
  // NCCL may still use.
  void abort_comm() noexcept;

  // Waits until the work queued on stream_ so far is done (or fails, or the deadline passes).
  void wait_stream(const std::string& what, Clock::time_point deadline);

  // An NCCL call's result in non-blocking mode: ncclInProgress until the communicator's state
  // (ncclCommGetAsyncError) leaves it.
  void check(ncclResult_t result, const std::string& what, Clock::time_point deadline);
  // NCCL's last error text (process-wide in NCCL 2.28) is read before the abort, which may add
  // its own.
  [[noreturn]] void fail(const std::string& what, ncclResult_t result);

  template <typename Done>
  void watch(const std::string& what, Clock::time_point deadline, Done done);

  // After a timeout: asks the other ranks over MPI how far they got (comm/collective_check.h).
  std::string missing_ranks();

  // Every rank's header, compared on every rank (one all_gather of six words per rank).
  void check_agreement(const CollectiveHeader& header, const std::string& what,
                       Clock::time_point deadline);

  template <typename Enqueue>
  void run(CollectiveHeader header, Enqueue enqueue);

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
  std::shared_ptr<std::atomic<bool>> abort_done_;  // set by the aborting thread when it is done
  std::atomic<bool> abort_requested_{false};
  std::string stream_error_;          // set by wait_stream's poll when the stream fails
  cudaEvent_t next_ready_ = nullptr;  // order_next_after's event, for the next collective
  char* scratch_ = nullptr;           // device: staged host buffers (stage())
  std::size_t scratch_bytes_ = 0;
  void* pinned_ = nullptr;  // page-locked: their way in and out
  std::size_t pinned_bytes_ = 0;
};

template <typename Done>
void NcclCommunicator::watch(const std::string& what, Clock::time_point deadline, Done done) {
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

template <typename Enqueue>
void NcclCommunicator::run(CollectiveHeader header, Enqueue enqueue) {
  std::lock_guard<std::mutex> lock(mutex_);
  // The caller's event is for this collective only, whatever happens to it.
  const cudaEvent_t ready = next_ready_;
  next_ready_ = nullptr;
  header.sequence = ++sequence_;
  in_flight_ = header.sequence;
  const std::string what = collective_label(header);
  DPT_CHECK_AS(ErrorKind::kComm, !aborted_ && !abort_requested_)
      << "nccl: " << what << " on rank " << rank_ << ": the communicator was aborted";
  try {
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
  } catch (...) {
    // Whatever failed (a CUDA call, a header mismatch that every rank sees), peers may already
    // wait in this collective: the communicator is aborted so nothing waits on it any more.
    in_flight_ = 0;
    abort_comm();
    throw;
  }
  in_flight_ = 0;
}

}  // namespace dpt
