// GradSync: bucket assignment, readiness counting and the communication thread.
#include "comm/grad_sync.h"

#include <algorithm>
#include <chrono>

#include "comm/reduce.h"
#include "devices/error.h"
#include "devices/gpu_ops.h"

namespace dpt {

GradSync::GradSync(Communicator& comm, const Tensor& grads, const std::vector<FlatRange>& params,
                   const GradSyncOptions& options)
    : comm_(comm),
      device_(grads.device()),
      data_(grads.data<float>()),
      options_(options),
      params_(params) {
  if (device_.kind() != DeviceKind::kCpu && !comm.device_memory()) {
    host_ = static_cast<float*>(device_.allocate_host(grads.bytes()));
    copies_ = device_.create_copy_queue();
    copied_ = copies_->create_event();
  }
  DPT_CHECK(options_.reduce_dtype == DType::kF32 || options_.reduce_dtype == DType::kBF16 ||
            options_.reduce_dtype == DType::kF16)
      << "grad sync: gradients are reduced in float32, bf16 or fp16, not "
      << dtype_name(options_.reduce_dtype);
  if (options_.reduce_dtype != DType::kF32) {
    const std::size_t wire_bytes = static_cast<std::size_t>(grads.numel()) * sizeof(uint16_t);
    wire_on_device_ = device_.kind() != DeviceKind::kCpu && comm.device_memory();
    if (wire_on_device_) {
      wire_ = static_cast<uint16_t*>(device_.allocate(wire_bytes));
    } else {
      // Collective, like the constructor's callers: every rank builds its GradSync together.
      wire_host_ = comm.allocate_shared(wire_bytes);
      if (wire_host_ == nullptr)
        wire_host_.reset(new uint16_t[grads.numel()](),
                         [](void* p) { delete[] static_cast<uint16_t*>(p); });
      wire_ = static_cast<uint16_t*>(wire_host_.get());
    }
  }
  // Buckets hold whole layers, filled from the last layer back, in the order backward ends them.
  bucket_of_param_.assign(params_.size(), -1);
  const int64_t bucket_elements =
      std::max<int64_t>(1, static_cast<int64_t>(options_.bucket_bytes / sizeof(float)));
  for (std::size_t i = params_.size(); i-- > 0;) {
    const FlatRange& range = params_[i];
    if (range.count == 0) continue;
    DPT_CHECK(range.offset >= 0 && range.offset + range.count <= grads.numel())
        << "grad sync: range [" << range.offset << ", +" << range.count << ") outside the "
        << grads.numel() << " gradients";
    if (buckets_.empty() || buckets_.back().range.count >= bucket_elements) {
      buckets_.push_back({range, 0, false});
    } else {
      // Layers are contiguous in the flat buffer, so the bucket grows downwards.
      Bucket& bucket = buckets_.back();
      DPT_CHECK(range.offset + range.count == bucket.range.offset)
          << "grad sync: parameter ranges must be contiguous and in layer order";
      bucket.range.offset = range.offset;
      bucket.range.count += range.count;
    }
    bucket_of_param_[i] = static_cast<int>(buckets_.size()) - 1;
  }
  // On a GPU, each bucket's end of backward is marked on the compute queue (ready()), so its
  // copies or collective wait for that work only, not for the rest of backward queued meanwhile.
  if (device_.kind() != DeviceKind::kCpu) {
    for (std::size_t i = 0; i < buckets_.size(); ++i)
      bucket_ready_.push_back(device_.create_event());
  }
  if (options_.overlap) thread_ = std::thread([this] { worker(); });
}

GradSync::~GradSync() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (host_ != nullptr) device_.deallocate_host(host_);
  if (wire_on_device_) device_.deallocate(wire_);
}

void GradSync::begin() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (Bucket& bucket : buckets_) {
    bucket.pending = bucket.range.count;
    bucket.started = false;
    bucket.marked = false;
  }
}

void GradSync::ready(const FlatRange& range) {
  if (range.count == 0) return;
  auto it = std::find_if(params_.begin(), params_.end(), [&](const FlatRange& p) {
    return p.offset == range.offset && p.count == range.count;
  });
  DPT_CHECK(it != params_.end()) << "grad sync: unknown range at " << range.offset;
  const int index = bucket_of_param_[static_cast<std::size_t>(it - params_.begin())];
  Bucket& bucket = buckets_[static_cast<std::size_t>(index)];
  {
    std::lock_guard<std::mutex> lock(mutex_);
    bucket.pending -= range.count;
    if (bucket.pending != 0) return;
  }
  mark(static_cast<std::size_t>(index));
  std::lock_guard<std::mutex> lock(mutex_);
  if (options_.overlap && !bucket.started) {
    bucket.started = true;
    queue_.push_back(index);
    ++in_flight_;
    wake_.notify_all();
  }
}

void GradSync::mark(std::size_t index) {
  Bucket& bucket = buckets_[index];
  if (bucket.marked) return;
  bucket.marked = true;
  if (wire_on_device_) {
    // Queued here, right after the bucket's backward, not behind the rest of it.
    gpu_round_to_16bit(device_, options_.reduce_dtype == DType::kBF16, data_ + bucket.range.offset,
                       wire_ + bucket.range.offset, bucket.range.count);
  }
  if (!bucket_ready_.empty()) bucket_ready_[index]->record();
}

void GradSync::finish() {
  const auto start = std::chrono::steady_clock::now();
  // Buckets whose ranges were never reported (e.g. a layer without a hook) end with backward.
  for (std::size_t i = 0; i < buckets_.size(); ++i) mark(i);
  if (options_.overlap) {
    std::unique_lock<std::mutex> lock(mutex_);
    // Buckets whose ranges were never reported (e.g. a layer without a hook) go now, in order.
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
      if (!buckets_[i].started) {
        buckets_[i].started = true;
        queue_.push_back(static_cast<int>(i));
        ++in_flight_;
      }
    }
    wake_.notify_all();
    wake_.wait(lock, [this] { return in_flight_ == 0; });
    if (error_) {
      std::exception_ptr error = error_;
      error_ = nullptr;
      std::rethrow_exception(error);
    }
  } else {
    for (std::size_t i = 0; i < buckets_.size(); ++i) reduce(i, buckets_[i].range);
  }
  last_wait_s_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void GradSync::reduce(std::size_t index, const FlatRange& range) {
  TraceSpan span(tracer_, "all_reduce",
                 tracer_ ? "bucket " + std::to_string(index) + " (" +
                               std::to_string(range.count * 4 / 1024) + " KiB)"
                         : std::string());
  const std::size_t count = static_cast<std::size_t>(range.count);
  float* data = data_ + range.offset;
  if (host_ == nullptr) {
    if (!bucket_ready_.empty()) comm_.order_next_after(*bucket_ready_[index]);
    sum(data, range);
    return;
  }
  // On the copy queue, after the backward work that wrote this bucket (and not after the work
  // queued since): the copies overlap the rest of backward.
  float* host = host_ + range.offset;
  copies_->wait_for(*bucket_ready_[index]);
  copies_->copy_to_host_async(host, data, count * sizeof(float));
  copied_->record();
  copied_->wait();
  sum(host, range);
  copies_->copy_from_host_async(data, host, count * sizeof(float));
  // finish() returns only when every bucket is back on the device and the host buffer is free;
  // the optimizer's kernels, queued after it, then read the sums.
  copied_->record();
  copied_->wait();
}

void GradSync::sum(float* values, const FlatRange& range) {
  const std::size_t count = static_cast<std::size_t>(range.count);
  if (wire_ == nullptr) {
    comm_.all_reduce(values, values, count, DType::kF32, ReduceOp::kSum);
    return;
  }
  const bool bf16 = options_.reduce_dtype == DType::kBF16;
  uint16_t* wire = wire_ + range.offset;
  if (wire_on_device_) {
    // Rounded by mark() when backward produced the bucket.
    comm_.all_reduce(wire, wire, count, options_.reduce_dtype, ReduceOp::kSum);
    gpu_widen_16bit(device_, bf16, wire, values, range.count);
    return;
  }
  round_floats(values, wire, count, options_.reduce_dtype);
  comm_.all_reduce(wire, wire, count, options_.reduce_dtype, ReduceOp::kSum);
  widen_floats(wire, values, count, options_.reduce_dtype);
}

void GradSync::worker() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    wake_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    const int index = queue_.front();
    queue_.pop_front();
    const FlatRange range = buckets_[static_cast<std::size_t>(index)].range;
    const bool skip = error_ != nullptr;  // after a failure, do not start more collectives
    lock.unlock();
    if (!skip) {
      try {
        reduce(static_cast<std::size_t>(index), range);
      } catch (...) {
        lock.lock();
        if (!error_) error_ = std::current_exception();
        lock.unlock();
      }
    }
    lock.lock();
    --in_flight_;
    wake_.notify_all();
  }
}

}  // namespace dpt
