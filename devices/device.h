// The Device interface: where memory lives and where work runs. One worker process owns one
// Device. It owns memory, copies, streams and library handles only; the kernels of an op live
// next to that op in core/ or optim/ and ask the device which library to use.
// Callers pass Device& explicitly; a Device must outlive every Tensor allocated on it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace dpt {

enum class DeviceKind { kCpu, kCuda };

// Device memory allocated through allocate() and not yet freed, alignment padding included.
struct MemoryCounters {
  int64_t current_bytes = 0;
  int64_t peak_bytes = 0;  // the most current_bytes reached since the last reset_peak()
};

// A point in a device's queue of work: wait() blocks the host until everything queued before the
// last record() has finished (e.g. an asynchronous copy, so its host buffer may be reused).
// Made by Device::create_event(); the CPU device's does nothing, since its work never queues.
class DeviceEvent {
 public:
  virtual ~DeviceEvent() = default;
  virtual void record() = 0;
  virtual void wait() = 0;
};

// A second queue of work on a device, for copies that run while the device computes (batch
// uploads, gradient buckets staged through the host; CUDA: a stream of its own; the CPU device:
// copies done at once, ordering trivial).
// It is ordered against the device's compute queue (where kernels, copy(), zero() and the other
// copies go) only where asked, and on the device: no call here blocks the host. Made by
// Device::create_copy_queue(); must not outlive its device. Used from one thread.
class CopyQueue {
 public:
  virtual ~CopyQueue() = default;
  // Copies queued here from now on start only after all work queued on the compute queue so far
  // has finished (e.g. the kernels still reading the buffer a copy is about to overwrite).
  virtual void wait_for_compute() = 0;
  // Copies queued here from now on start only after `compute_event` (an event of this device,
  // recorded on its compute queue) has completed: the work queued before that record, not what
  // was queued since (the gradient sync waits for the backward kernels of one bucket only).
  virtual void wait_for(DeviceEvent& compute_event) = 0;
  // Host memory (from allocate_host) -> device memory, queued here; returns at once. The host
  // buffer must stay untouched until an event of this queue recorded after it has been waited for.
  virtual void copy_from_host_async(void* dst, const void* host_src, std::size_t bytes) = 0;
  // Device memory -> host memory (from allocate_host), queued here; returns at once. The host
  // buffer holds the data once an event of this queue recorded after it has been waited for.
  virtual void copy_to_host_async(void* host_dst, const void* src, std::size_t bytes) = 0;
  // Work queued on the compute queue from now on starts only after every copy queued here so far
  // has finished (e.g. the kernels that read the copied data).
  virtual void make_compute_wait() = 0;
  // An event on this queue: record() marks the copies queued here so far; wait() blocks the host
  // until they have finished.
  virtual std::unique_ptr<DeviceEvent> create_event() = 0;
};

// Times a sequence of phases the way the device spends them (launch/train_step.h times a step's
// data, forward, backward, sync, norm and optimizer with one). lap(phase) ends the current
// interval, charging it to `phase`, and starts the next; read() hands the charged seconds over.
// The CPU device: host time between laps (steady_clock). CUDA: a timing event recorded on the
// compute stream at each lap, so an interval is the stream's time from one lap to the next: the
// kernels queued in it, plus any time the stream sat idle waiting for the host. Made by
// Device::create_phase_clock(); must not outlive its device. Used from one thread.
class PhaseClock {
 public:
  static constexpr int kMaxPhases = 8;
  static constexpr int kUncharged = -1;  // lap(kUncharged): start timing, charge nothing
  virtual ~PhaseClock() = default;
  // Ends the current interval, charging it to `phase` (0 .. kMaxPhases - 1, or kUncharged), and
  // starts the next. Never waits for the device.
  virtual void lap(int phase) = 0;
  // Adds the seconds of every ended interval that the device has finished to seconds[phase]
  // (kMaxPhases entries) and forgets them; intervals whose work still runs stay for a later
  // read(). Never waits: called after a step's own synchronisation (a value read back), every
  // interval lapped before it is finished. The CPU clock's intervals are always finished.
  virtual void read(double* seconds) = 0;
};

// The CPU's PhaseClock: host time between laps, every interval finished when lapped.
std::unique_ptr<PhaseClock> make_host_phase_clock();

class Device {
 public:
  virtual ~Device() = default;
  virtual DeviceKind kind() const = 0;
  // Index among devices of this kind on the node (CUDA ordinal; 0 on the CPU).
  virtual int index() const = 0;
  // Human-readable description, e.g. "cpu (AMD EPYC, 2 threads, oneDNN sgemm)".
  virtual std::string name() const = 0;
  // Returns `bytes` of device memory aligned to 64 bytes; throws dpt::Error when out of memory.
  virtual void* allocate(std::size_t bytes) = 0;
  virtual void deallocate(void* ptr) noexcept = 0;
  // What allocate() holds now and at its peak (`dpt tune` measures a step with these).
  // Thread-safe.
  virtual MemoryCounters memory_counters() const = 0;
  // Starts a new peak: peak_bytes = current_bytes.
  virtual void reset_peak() = 0;
  // Copies `bytes` between two buffers of this device (the CPU device: plain memory).
  virtual void copy(void* dst, const void* src, std::size_t bytes) = 0;
  // Host memory -> this device, and this device -> host memory; both return when the copy has
  // finished (the CPU device: memcpy).
  virtual void copy_from_host(void* dst, const void* host_src, std::size_t bytes) = 0;
  virtual void copy_to_host(void* host_dst, const void* src, std::size_t bytes) = 0;
  // Host memory that asynchronous copies can run from and to at full speed (CUDA: page-locked;
  // the CPU device: 64-byte aligned plain memory). Throws dpt::Error when out of memory.
  virtual void* allocate_host(std::size_t bytes) = 0;
  virtual void deallocate_host(void* ptr) noexcept = 0;
  // The same copies, queued after the work already queued on this device; they return at once
  // (the CPU device: a synchronous memcpy). The host buffer (from allocate_host) must stay
  // untouched until a DeviceEvent recorded after the copy has been waited for. May be called
  // from another thread than the one queuing kernels (the gradient sync's).
  virtual void copy_from_host_async(void* dst, const void* host_src, std::size_t bytes) = 0;
  virtual void copy_to_host_async(void* host_dst, const void* src, std::size_t bytes) = 0;
  virtual std::unique_ptr<DeviceEvent> create_event() = 0;
  // A separate queue for host -> device copies that overlap compute (see CopyQueue).
  virtual std::unique_ptr<CopyQueue> create_copy_queue() = 0;
  // Sets `bytes` of device memory to zero.
  virtual void zero(void* ptr, std::size_t bytes) = 0;
  // Blocks until all work queued on this device's compute queue (kernels, copy(), zero() and the
  // device's own copies) has finished; a CopyQueue's copies are waited for with its events.
  virtual void synchronize() = 0;
  // A clock for the phases of the work queued on this device (see PhaseClock); host time unless
  // the device queues work (CUDA overrides it).
  virtual std::unique_ptr<PhaseClock> create_phase_clock() { return make_host_phase_clock(); }
  // Whether `ptr` points into memory of this device that host code cannot read (CUDA device
  // memory), so a communicator given it must move it with the device's copies. Host memory,
  // page-locked or not, is not; on the CPU device nothing is.
  virtual bool is_device_pointer(const void* ptr) const { return false; }
};

}  // namespace dpt
