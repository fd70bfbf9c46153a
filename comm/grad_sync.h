// Gradient averaging across workers, bucketed and overlapped with backward (the Reducer seam of
// Flashlight / PyTorch DDP). The flat gradient buffer is cut into buckets of about bucket_bytes,
// from the last layer backwards (the order backward produces them); each bucket is summed across
// ranks by one all-reduce, started on a communication thread as soon as backward has reported every
// parameter range it covers, while backward goes on with earlier layers. Because the loss gradient
// is scaled by 1 / global batch on every rank, the sum is the gradient of the mean loss.
// Gradients on a GPU: when a bucket is complete, ready() records an event on the compute queue.
// A communicator that takes device memory gets device pointers, and the event
// (Communicator::order_next_after), so the collective waits for that bucket's backward only; any
// other gets each bucket through a page-locked host buffer (copy to host, all-reduce, copy back),
// the copies on a copy queue (a second CUDA stream) that waits for the event. Either way the
// bucket's trip overlaps the rest of backward, which the main thread has usually queued already.
// With a 16-bit reduce_dtype each bucket is rounded into a 16-bit buffer where the all-reduce
// runs (on the device for device-memory communicators, else on the host: the communicator's
// allocate_shared memory when it has some, so one node still reduces it without copies) and
// widened back into the float32 gradients.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "comm/communicator.h"
#include "core/tensor.h"
#include "core/trace.h"

namespace dpt {

struct GradSyncOptions {
  std::size_t bucket_bytes = 25u << 20;
  bool overlap = true;  // false: all buckets are reduced in finish(), on the calling thread
  // The format buckets are summed in (comm.reduce_dtype): kF32, or kBF16 / kF16, rounded to
  // nearest even before the all-reduce and widened back after it (half the bytes moved).
  DType reduce_dtype = DType::kF32;
};

// A contiguous range of the flat buffer, in elements.
struct FlatRange {
  int64_t offset = 0;
  int64_t count = 0;
};

class GradSync {
 public:
  // `grads`: the model's flat float32 gradient buffer, on any device. `params`: each layer's range
  // in it, in layer order (empty ranges allowed). The communicator and the device must outlive
  // this object.
  GradSync(Communicator& comm, const Tensor& grads, const std::vector<FlatRange>& params,
           const GradSyncOptions& options);
  ~GradSync();
  GradSync(const GradSync&) = delete;
  GradSync& operator=(const GradSync&) = delete;

  // Starts a synchronising backward: no bucket is ready.
  void begin();
  // Backward has finished the gradients of `range` (one of the constructor's ranges); buckets
  // it completes are handed to the communication thread. Called on the backward thread.
  void ready(const FlatRange& range);
  // Waits until every bucket is reduced (reducing those not started yet) and rethrows the first
  // communication error. After it, grads holds the sum over ranks on every rank.
  void finish();

  // Records each bucket's all-reduce into `tracer` (null: off). Not owned.
  void set_tracer(Tracer* tracer) { tracer_ = tracer; }

  int num_buckets() const { return static_cast<int>(buckets_.size()); }
  // Whether buckets travel through host memory (gradients not on the CPU, and a communicator
  // that takes host memory only).
  bool staged() const { return host_ != nullptr; }
  // Seconds finish() spent waiting in the last step (communication not hidden by backward).
  double last_wait_s() const { return last_wait_s_; }

 private:
  struct Bucket {
    FlatRange range;
    int64_t pending = 0;  // elements not yet reported ready in this step
    bool started = false;
    bool marked = false;  // mark() ran in this step
  };
  // On the backward thread, when bucket `index` is complete (or in finish()): queues its 16-bit
  // rounding (device wire) and records its ready event, once per step.
  void mark(std::size_t index);
  void reduce(std::size_t index, const FlatRange& range);
  // Sums `values` (range's float32 gradients, on the device or the host) over ranks, through
  // the 16-bit buffer when reduce_dtype asks for one.
  void sum(float* values, const FlatRange& range);
  void worker();

  Communicator& comm_;
  Device& device_;
  float* data_;            // the gradients: device memory, or host memory on the CPU
  float* host_ = nullptr;  // staging buffer (allocate_host) of every gradient; null: no staging
  // 16-bit reduce_dtype: one uint16 per gradient, on the device (wire_on_device_) or the host.
  uint16_t* wire_ = nullptr;
  bool wire_on_device_ = false;
  std::shared_ptr<void> wire_host_;
  std::unique_ptr<CopyQueue> copies_;    // staged: the buckets' copies, beside compute
  std::unique_ptr<DeviceEvent> copied_;  // reduce() waits for its copies with it
  std::vector<std::unique_ptr<DeviceEvent>> bucket_ready_;  // GPU: each bucket's end of backward
  GradSyncOptions options_;
  std::vector<Bucket> buckets_;
  std::vector<FlatRange> params_;
  std::vector<int> bucket_of_param_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<int> queue_;
  int in_flight_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
  std::thread thread_;
  double last_wait_s_ = 0.0;
  Tracer* tracer_ = nullptr;
};

}  // namespace dpt
