// CudaDevice::create_phase_clock (devices/cuda/cuda_device.h): the PhaseClock of a GPU. Each lap
// records a timing event on the compute stream; an interval is cudaEventElapsedTime between two
// consecutive laps' events, i.e. the stream's own time for the work queued between them (and any
// idle time the stream spent waiting for the host to queue more). read() takes the intervals
// whose closing event cudaEventQuery reports complete and never waits, so timing adds no
// synchronisation: called after a step's own wait (its loss or norm read back), everything lapped
// before that wait is complete; what was queued after it (the optimizer) is read next time.
#include <cuda_runtime_api.h>

#include <deque>
#include <vector>

#include "devices/cuda/cuda_check.h"
#include "devices/cuda/cuda_device.h"
#include "devices/error.h"

namespace dpt {
namespace {

class CudaPhaseClock : public PhaseClock {
 public:
  CudaPhaseClock(int ordinal, cudaStream_t stream) : ordinal_(ordinal), stream_(stream) {}
  ~CudaPhaseClock() override {
    cuda_clear_error(cudaSetDevice(ordinal_));
    for (const Mark& mark : marks_) cuda_clear_error(cudaEventDestroy(mark.event));
    for (cudaEvent_t event : spare_) cuda_clear_error(cudaEventDestroy(event));
  }
  CudaPhaseClock(const CudaPhaseClock&) = delete;
  CudaPhaseClock& operator=(const CudaPhaseClock&) = delete;

  void lap(int phase) override {
    DPT_CHECK(phase >= kUncharged && phase < kMaxPhases) << "PhaseClock: no phase " << phase;
    CUDA_CHECK(cudaSetDevice(ordinal_));
    cudaEvent_t event = nullptr;
    if (spare_.empty()) {
      CUDA_CHECK(cudaEventCreate(&event));  // timing enabled (the default flags)
    } else {
      event = spare_.back();
      spare_.pop_back();
    }
    // An event that fails to record goes back to the spares, not into the marks.
    const cudaError_t status = cudaEventRecord(event, stream_);
    if (status != cudaSuccess) spare_.push_back(event);
    CUDA_CHECK(status);
    marks_.push_back({event, phase});
  }

  void read(double* seconds) override {
    CUDA_CHECK(cudaSetDevice(ordinal_));
    // marks_[0] opens the oldest unread interval; marks_[1] closes it and names its phase.
    while (marks_.size() >= 2) {
      const cudaError_t state = cudaEventQuery(marks_[1].event);
      if (state == cudaErrorNotReady) {
        // The work still runs. "Not ready" is recorded as the thread's last CUDA error, which
        // the next launch check would report as its own: clear it (as PyTorch does).
        cudaGetLastError();
        return;
      }
      CUDA_CHECK(state);
      float ms = 0;
      CUDA_CHECK(cudaEventElapsedTime(&ms, marks_[0].event, marks_[1].event));
      if (marks_[1].phase != kUncharged) seconds[marks_[1].phase] += ms * 1e-3;
      spare_.push_back(marks_[0].event);
      marks_.pop_front();
    }
  }

 private:
  struct Mark {
    cudaEvent_t event;
    int phase;  // of the interval this mark ends
  };
  int ordinal_;
  cudaStream_t stream_;
  std::deque<Mark> marks_;          // recorded, in lap order; the last one opens the next interval
  std::vector<cudaEvent_t> spare_;  // read and free for reuse
};

}  // namespace

std::unique_ptr<PhaseClock> CudaDevice::create_phase_clock() {
  make_current();
  return std::make_unique<CudaPhaseClock>(ordinal_, stream_);
}

}  // namespace dpt
