// A stand-in for a GPU in CPU-only tests: a Device that says it is kCuda but keeps its memory in
// plain host memory, separate from the caller's, and counts how it is used (copies each way and
// within the device, async or not, page-locked allocations, events recorded and waited). Code
// that branches on device.kind() takes its GPU path with it, so tests can check the copies made
// and that compute reaches devices/gpu_ops.h, which refuses it cleanly (it is not a CudaDevice).
// Never runs a kernel. Its CopyQueue behaves like a second stream that is only as fast as it
// must be: a queued copy runs (reading its host buffer then) only when compute is made to wait
// for it, when an event of the queue is waited for, or when the queue goes; and every call on
// the queue is logged in order (queue_calls), so tests see the ordering a caller asks for.
// Compute reads device memory at once (copy_to_host), so it sees a batch whose copy it was not
// ordered after as the buffer's old contents. Its phase clock is a FakePhaseClock
// (fake_phase_clock.h) over phase_seconds, the duration a test sets for one lap of each phase.
#pragma once

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "devices/device.h"
#include "fake_phase_clock.h"

namespace dpt {

struct FakeGpuCounts {
  int to_device = 0, to_host = 0, to_device_async = 0, to_host_async = 0, within = 0;
  int host_allocations = 0, host_frees = 0, records = 0, waits = 0;
  // Through the copy queue: copies queued, and the ordering each way.
  int queued_copies = 0, copies_wait_for_compute = 0, compute_waits_for_copies = 0;
};

class FakeGpu : public Device {
 public:
  DeviceKind kind() const override { return DeviceKind::kCuda; }
  int index() const override { return index_; }
  std::string name() const override { return "fake-gpu:" + std::to_string(index_); }
  void* allocate(std::size_t bytes) override {
    const std::size_t size = (bytes + 63) / 64 * 64 + 64;
    void* ptr = std::aligned_alloc(64, size);
    if (ptr != nullptr) std::memset(ptr, 0, bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    blocks_[static_cast<const char*>(ptr)] = size;
    return ptr;
  }
  void deallocate(void* ptr) noexcept override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      blocks_.erase(static_cast<const char*>(ptr));
    }
    std::free(ptr);
  }
  // Inside a block allocate() gave (its memory stands for device memory).
  bool is_device_pointer(const void* ptr) const override {
    const char* p = static_cast<const char*>(ptr);
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = blocks_.upper_bound(p);
    if (it == blocks_.begin()) return false;
    --it;
    return p < it->first + it->second;
  }
  MemoryCounters memory_counters() const override { return {}; }
  void reset_peak() override {}
  void copy(void* dst, const void* src, std::size_t bytes) override {
    ++counts.within;
    move(dst, src, bytes);
  }
  void copy_from_host(void* dst, const void* src, std::size_t bytes) override {
    ++counts.to_device;
    move(dst, src, bytes);
  }
  void copy_to_host(void* dst, const void* src, std::size_t bytes) override {
    ++counts.to_host;
    move(dst, src, bytes);
  }
  void* allocate_host(std::size_t bytes) override {
    ++counts.host_allocations;
    return std::calloc(bytes == 0 ? 1 : bytes, 1);
  }
  void deallocate_host(void* ptr) noexcept override {
    ++counts.host_frees;
    std::free(ptr);
  }
  void copy_from_host_async(void* dst, const void* src, std::size_t bytes) override {
    ++counts.to_device_async;
    move(dst, src, bytes);
  }
  void copy_to_host_async(void* dst, const void* src, std::size_t bytes) override {
    ++counts.to_host_async;
    move(dst, src, bytes);
  }
  std::unique_ptr<DeviceEvent> create_event() override {
    return std::make_unique<Event>(*this, nullptr);
  }
  std::unique_ptr<CopyQueue> create_copy_queue() override { return std::make_unique<Queue>(*this); }
  void zero(void* ptr, std::size_t bytes) override {
    if (bytes > 0) std::memset(ptr, 0, bytes);
  }
  void synchronize() override {}
  std::unique_ptr<PhaseClock> create_phase_clock() override {
    return std::make_unique<FakePhaseClock>(phase_seconds);
  }

  explicit FakeGpu(int index = 0) : index_(index) {}
  FakeGpuCounts counts;
  std::vector<double> phase_seconds;  // one lap's duration per phase (see FakePhaseClock)
  // Every copy queue call, in order: "wait_for_compute", "copy", "make_compute_wait", and
  // "record" / "wait" of the queue's events; "wait_for event N" and "copy_to_host"; and
  // "record event N" for the compute queue's events (N: the event's number, from 1 in order of
  // creation). Safe to append from several threads.
  std::vector<std::string> queue_calls;
  void log(const std::string& call) {
    std::lock_guard<std::mutex> lock(log_mutex_);
    queue_calls.push_back(call);
  }

 private:
  struct Pending {
    void* dst;
    const void* src;
    std::size_t bytes;
  };
  class Queue;
  // A compute-queue event (`queue` null: work is done when queued; logged with its number), or one
  // of a copy queue.
  class Event : public DeviceEvent {
   public:
    Event(FakeGpu& gpu, Queue* queue) : gpu_(gpu), counts_(gpu.counts), queue_(queue) {
      if (!queue_) number_ = ++gpu.compute_events_;
    }
    int number() const { return number_; }
    void record() override {
      ++counts_.records;
      if (queue_) queue_->log("record");
      if (!queue_) gpu_.log("record event " + std::to_string(number_));
    }
    void wait() override {
      ++counts_.waits;
      if (queue_) {
        queue_->log("wait");
        queue_->run();
      }
    }

   private:
    FakeGpu& gpu_;
    FakeGpuCounts& counts_;
    Queue* queue_;
    int number_ = 0;
  };
  class Queue : public CopyQueue {
   public:
    explicit Queue(FakeGpu& gpu) : gpu_(gpu), counts_(gpu.counts) {}
    ~Queue() override { run(); }
    void wait_for_compute() override {
      ++counts_.copies_wait_for_compute;
      log("wait_for_compute");
    }
    void wait_for(DeviceEvent& compute_event) override {
      log("wait_for event " + std::to_string(static_cast<Event&>(compute_event).number()));
    }
    void copy_from_host_async(void* dst, const void* src, std::size_t bytes) override {
      ++counts_.queued_copies;
      log("copy");
      pending_.push_back({dst, src, bytes});
    }
    void copy_to_host_async(void* dst, const void* src, std::size_t bytes) override {
      ++counts_.queued_copies;
      log("copy_to_host");
      pending_.push_back({dst, src, bytes});
    }
    void make_compute_wait() override {
      ++counts_.compute_waits_for_copies;
      log("make_compute_wait");
      run();
    }
    std::unique_ptr<DeviceEvent> create_event() override {
      return std::make_unique<Event>(gpu_, this);
    }
    void log(const std::string& call) { gpu_.log(call); }
    // The copies queued so far run now.
    void run() {
      for (const Pending& copy : pending_) move(copy.dst, copy.src, copy.bytes);
      pending_.clear();
    }

   private:
    FakeGpu& gpu_;
    FakeGpuCounts& counts_;
    std::vector<Pending> pending_;
  };
  static void move(void* dst, const void* src, std::size_t bytes) {
    if (bytes > 0) std::memmove(dst, src, bytes);
  }
  int index_;
  std::atomic<int> compute_events_{0};
  std::mutex log_mutex_;
  mutable std::mutex mutex_;
  std::map<const char*, std::size_t> blocks_;  // allocate()'s blocks: start -> size
};

}  // namespace dpt
