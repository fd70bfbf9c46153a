// BatchLoader: two slots, each a host buffer and a device buffer; a prefetch gathers into the
// free slot's host buffer and queues the copy on the copy queue, a take hands out the slot if it
// holds the batch and orders compute after its copy.
#include "launch/batch_loader.h"

#include "devices/error.h"
#include "launch/device_transfer.h"

namespace dpt {

BatchLoader::BatchLoader(Device& device, int64_t rows, int64_t features, DType dtype, Device* host)
    : device_(device), rows_(rows) {
  DPT_CHECK(rows > 0 && features > 0)
      << "batch loader: " << rows << " rows of " << features << " features";
  const bool on_cpu = device.kind() == DeviceKind::kCpu;
  if (!on_cpu) {
    if (host == nullptr) {
      own_host_ = make_pinned_host(device);
      host = own_host_.get();
    }
    host_ = host;
    copies_ = device.create_copy_queue();
  }
  for (Slot& slot : slots_) {
    slot.inputs = Tensor(device, {rows, features}, dtype);
    slot.labels = Tensor(device, {rows}, DType::kI32);
    slot.host_inputs = on_cpu ? slot.inputs : Tensor(*host_, {rows, features}, dtype);
    slot.host_labels = on_cpu ? slot.labels : Tensor(*host_, {rows}, DType::kI32);
    slot.copied = on_cpu ? device.create_event() : copies_->create_event();
  }
}

BatchLoader::~BatchLoader() {
  // Host buffers may be the source, and device buffers the target, of copies still queued (the
  // device memory pool only orders reuse on the compute stream).
  // A destructor must not throw: after a failed copy or kernel (a sticky CUDA error, the one
  // that is already unwinding this loader) the wait fails too, and is dropped.
  for (Slot& slot : slots_) {
    try {
      slot.copied->wait();
    } catch (...) {
    }
  }
}

void BatchLoader::prefetch(const BatchKey& key, const BatchSource& source) {
  DPT_CHECK(key.n > 0 && key.n <= rows_)
      << "batch loader: a micro-batch of " << key.n << " rows, the buffers hold " << rows_;
  const int index = 1 - current_;
  Slot& slot = slots_[index];
  staged_ = -1;
  slot.key = BatchKey();  // not valid until loaded: a failing source leaves no stale batch
  slot.copied->wait();
  source(key.row, key.n, slot.host_inputs, slot.host_labels.data<int32_t>());
  if (host_) {
    // Kernels queued before this call may still read the slot's device tensors (its previous
    // batch, or, for a fresh pool block, another tensor's last use): the copy starts after them.
    copies_->wait_for_compute();
    const Tensor inputs = slot.host_inputs.rows(key.n);
    copies_->copy_from_host_async(slot.inputs.raw(), inputs.raw(), inputs.bytes());
    copies_->copy_from_host_async(slot.labels.raw(), slot.host_labels.raw(),
                                  static_cast<std::size_t>(key.n) * sizeof(int32_t));
    slot.copied->record();
  }
  slot.key = key;
  staged_ = index;
}

DeviceBatch BatchLoader::take(const BatchKey& key, const BatchSource& source) {
  if (staged_ >= 0 && slots_[staged_].key == key) {
    ++hits_;
  } else {
    ++misses_;
    prefetch(key, source);
  }
  current_ = staged_;
  staged_ = -1;
  // The batch's copy is the last one queued (a prefetch always fills the slot take() returns
  // next), so compute that uses the batch waits for every copy so far.
  if (copies_) copies_->make_compute_wait();
  const Slot& slot = slots_[current_];
  return {slot.inputs.rows(key.n), slot.labels.rows(key.n)};
}

}  // namespace dpt
