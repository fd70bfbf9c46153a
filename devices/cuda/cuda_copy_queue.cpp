// CudaDevice::create_copy_queue (devices/cuda/cuda_device.h): copies on a stream of their own, so
// a batch upload (or a gradient bucket's trip to the host) runs while the compute stream computes.
// The two streams are ordered only through events, on the GPU: cudaEventRecord captures the work
// queued on a stream so far, and cudaStreamWaitEvent makes everything queued later on another
// stream wait for it. Re-recording an event later does not affect a wait already queued (it uses
// the state captured at the time of the call), so one event per direction is enough.
#include <cuda_runtime_api.h>

#include "devices/cuda/cuda_check.h"
#include "devices/cuda/cuda_device.h"
#include "devices/error.h"

namespace dpt {
namespace {

class CudaCopyQueue : public CopyQueue {
 public:
  CudaCopyQueue(int ordinal, cudaStream_t compute) : ordinal_(ordinal), compute_(compute) {
    make_current();
    // Non-blocking like the compute stream: no implicit ordering with the legacy default stream.
    CUDA_CHECK(cudaStreamCreateWithFlags(&copy_, cudaStreamNonBlocking));
    try {
      compute_done_ = std::make_unique<CudaEvent>(ordinal_, compute_);
      copies_done_ = std::make_unique<CudaEvent>(ordinal_, copy_);
    } catch (...) {
      cuda_clear_error(cudaStreamDestroy(copy_));
      throw;
    }
  }
  ~CudaCopyQueue() override {
    // Copies still queued write device memory and read host buffers their owners will free.
    cuda_clear_error(cudaSetDevice(ordinal_));
    cuda_clear_error(cudaStreamSynchronize(copy_));
    compute_done_.reset();
    copies_done_.reset();
    cuda_clear_error(cudaStreamDestroy(copy_));
  }
  CudaCopyQueue(const CudaCopyQueue&) = delete;
  CudaCopyQueue& operator=(const CudaCopyQueue&) = delete;

  void wait_for_compute() override {
    compute_done_->record();  // the compute stream's work so far
    CUDA_CHECK(cudaStreamWaitEvent(copy_, compute_done_->event(), 0));
  }
  void wait_for(DeviceEvent& compute_event) override {
    auto* event = dynamic_cast<CudaEvent*>(&compute_event);
    DPT_CHECK(event != nullptr) << "copy queue: wait_for needs an event of its CUDA device";
    make_current();
    CUDA_CHECK(cudaStreamWaitEvent(copy_, event->event(), 0));
  }
  void copy_from_host_async(void* dst, const void* host_src, std::size_t bytes) override {
    if (bytes == 0) return;
    make_current();
    CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, copy_));
  }
  void copy_to_host_async(void* host_dst, const void* src, std::size_t bytes) override {
    if (bytes == 0) return;
    make_current();
    CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, copy_));
  }
  void make_compute_wait() override {
    copies_done_->record();  // the copies queued so far
    CUDA_CHECK(cudaStreamWaitEvent(compute_, copies_done_->event(), 0));
  }
  std::unique_ptr<DeviceEvent> create_event() override {
    make_current();
    return std::make_unique<CudaEvent>(ordinal_, copy_);
  }

 private:
  void make_current() const { CUDA_CHECK(cudaSetDevice(ordinal_)); }

  int ordinal_;
  cudaStream_t compute_;
  cudaStream_t copy_ = nullptr;
  std::unique_ptr<CudaEvent> compute_done_;  // recorded on compute_, waited for on copy_
  std::unique_ptr<CudaEvent> copies_done_;   // recorded on copy_, waited for on compute_
};

}  // namespace

std::unique_ptr<CopyQueue> CudaDevice::create_copy_queue() {
  return std::make_unique<CudaCopyQueue>(ordinal_, stream_);
}

}  // namespace dpt
