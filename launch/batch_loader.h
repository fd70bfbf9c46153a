// Gets micro-batches from the host onto the model's device with double buffering: while the
// device computes on one slot, the next micro-batch is gathered on the host into the other
// slot's host buffer and its copy is queued (prefetch), so host gathering overlaps device work.
// On a GPU the host buffers are page-locked (Device::allocate_host) and the copies go on the
// device's CopyQueue (a second CUDA stream), so the upload also overlaps compute. The ordering
// is on the device, never a host wait: a slot's copy waits for the compute queued before its
// prefetch (which includes every kernel still reading the slot's previous batch), and compute
// queued after take() waits for the copy. The host waits only before refilling a slot's host
// buffer, for that slot's previous copy. On the CPU device the host buffers are the device
// tensors themselves: no copy at all, and gathering simply happens when prefetch() is called
// instead of when the batch is needed. Labels travel as int32 tensors on the device. Used by
// TrainStep, evaluate() and tune's memory probe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "core/tensor.h"
#include "devices/device.h"

namespace dpt {

// Fills inputs.rows(n) and labels[0..n) with rows [row, row + n) of a step's global batch.
// `inputs` is host memory (a CPU-kind tensor, what gather_batch fills).
using BatchSource = std::function<void(int64_t row, int64_t n, Tensor& inputs, int32_t* labels)>;

// Names one micro-batch: rows [row, row + n) of the global batch of step `step`.
struct BatchKey {
  int64_t step = -1;
  int64_t row = 0;
  int64_t n = 0;
  bool operator==(const BatchKey& other) const {
    return step == other.step && row == other.row && n == other.n;
  }
};

// A micro-batch on the device: inputs [n, features] and labels [n] (int32).
struct DeviceBatch {
  Tensor inputs;
  Tensor labels;
};

class BatchLoader {
 public:
  // Two slots of `rows` x `features` inputs of `dtype` and `rows` labels on `device`, which must
  // outlive the loader. `host`: where the page-locked host buffers come from when `device` is
  // not the CPU (make_pinned_host; one with keep_freed lets a caller that makes loaders again
  // and again, as evaluate() does, page-lock them once); it must outlive the loader. Null: the
  // loader's own. Unused on the CPU.
  BatchLoader(Device& device, int64_t rows, int64_t features, DType dtype, Device* host = nullptr);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // Gathers micro-batch `key` with `source` into the slot the last take() did not return
  // (waiting on the host for that slot's previous copy first) and queues its copy on the copy
  // queue, after the compute queued so far; returns without waiting for the copy. key.n must be
  // in [1, rows].
  void prefetch(const BatchKey& key, const BatchSource& source);
  // Micro-batch `key` on the device: the prefetched one when its key matches, else loaded now.
  // Work queued on the device's compute queue after this call runs after the batch's copy. Its
  // tensors stay valid until the second take() after this one (work queued on the device
  // before that prefetch may still read them: the copy into them waits for it).
  DeviceBatch take(const BatchKey& key, const BatchSource& source);

  // Batches prefetch() loaded and take() found ready, and those take() had to load itself.
  int64_t hits() const { return hits_; }
  // Rows each slot holds (the constructor's `rows`).
  int64_t rows() const { return rows_; }
  int64_t misses() const { return misses_; }

 private:
  struct Slot {
    Tensor host_inputs;  // on host_ (page-locked), or the device tensor itself on the CPU
    Tensor host_labels;
    Tensor inputs;  // on the device
    Tensor labels;
    std::unique_ptr<DeviceEvent> copied;  // on copies_, recorded after the slot's last copy
    BatchKey key;
  };

  Device& device_;
  std::unique_ptr<Device> own_host_;  // page-locked host memory when the caller gave none
  Device* host_ = nullptr;  // page-locked host memory as a CPU-kind Device; null on the CPU
  std::unique_ptr<CopyQueue> copies_;  // the uploads' own queue; null on the CPU
  int64_t rows_;
  Slot slots_[2];    // declared after copies_, so destroyed first: their events are its
  int current_ = 1;  // the slot the last take() returned
  int staged_ = -1;  // the slot holding a prefetched batch not taken yet
  int64_t hits_ = 0;
  int64_t misses_ = 0;
};

}  // namespace dpt
