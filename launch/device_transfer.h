// Host access to tensors that may live on a GPU, for the launch code (checkpoints, final
// parameters, fine-tuning masks, broadcasts over communicators that only take host memory).
// Every read or write of a model's or optimizer's buffers from the host goes through here, so
// the CPU device pays one memcpy and a CUDA device one synchronous copy over PCIe.
#pragma once

#include <memory>
#include <vector>

#include "comm/communicator.h"
#include "core/tensor.h"

namespace dpt {

// The float32 values of `tensor` (numel() of them), copied to the host.
std::vector<float> to_host(const Tensor& tensor);
// Writes numel() float32 values from host memory into `tensor`.
void from_host(const Tensor& tensor, const float* values);

// `device`'s page-locked host memory (Device::allocate_host) presented as a CPU-kind Device, so
// host tensors that asynchronous copies read or write can live in it. Not counted in memory
// counters. `device` must outlive it and its tensors. With `keep_freed`, a freed block is kept
// for the next allocation of the same size and given back only when the returned Device goes,
// so buffers made again and again (each evaluation's batch loader) are page-locked once; its
// tensors must then be gone before it. Not thread-safe.
std::unique_ptr<Device> make_pinned_host(Device& device, bool keep_freed = false);

// Broadcasts the float32 `tensor` from `root` to every rank. A tensor on the CPU, or a
// communicator that takes device memory (Communicator::device_memory), is passed as is;
// otherwise the values travel through a host copy.
void broadcast_tensor(Communicator& comm, const Tensor& tensor, int root);

}  // namespace dpt
