// Tensor: a dense row-major array of float32 or float64 on one Device. Copies of a Tensor share
// storage (like a view); slice() makes a view into part of the same storage, which is how layers
// see the model's flat parameter and gradient buffers. data<T>() is a pointer into the device's
// memory: host code reads a GPU tensor through copy_to_host. Not thread-safe to mutate
// concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "devices/device.h"

namespace dpt {

// Element types. Tensors used for compute are float32 (float64 in gradient checks); the 16-bit
// floats and integers travel through the collective layer (reduced-precision gradients, counters).
enum class DType { kF32, kF64, kBF16, kF16, kI32, kI64 };

std::size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);

using Shape = std::vector<int64_t>;

// "[256, 784]"
std::string shape_string(const Shape& shape);
int64_t shape_numel(const Shape& shape);

class Tensor {
 public:
  Tensor() = default;
  // Allocates numel(shape) elements on `device`, zero-filled.
  Tensor(Device& device, Shape shape, DType dtype);
  // Over host memory owned elsewhere (at least numel(shape) elements, kept alive by `memory`),
  // zero-filled; `device` must be a CPU device. E.g. a gradient buffer the ranks of one node
  // share (Communicator::allocate_shared).
  Tensor(Device& device, Shape shape, DType dtype, std::shared_ptr<void> memory);

  bool defined() const { return storage_ != nullptr; }
  Device& device() const;
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int axis) const;
  int64_t numel() const { return shape_numel(shape_); }
  std::size_t bytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }

  // Typed pointer to the first element; T must match dtype() (float, double, int32_t, int64_t).
  template <typename T>
  T* data() const;
  void* raw() const;

  // A view of `shape` starting `offset` elements into this tensor; shares storage.
  Tensor slice(int64_t offset, Shape shape) const;
  // The same elements with another shape of equal numel; shares storage.
  Tensor reshape(Shape shape) const;
  // The first `rows` rows of a tensor of rank >= 1; shares storage.
  Tensor rows(int64_t rows) const;

  // Sets every element to zero on the tensor's device.
  void fill_zero();
  // Copies all elements from `src` (same dtype and numel), which may live on another device:
  // within one device through Device::copy (queued on a GPU's stream), CPU <-> GPU through the
  // GPU's copy_from_host / copy_to_host (they return when done), GPU <-> GPU through host memory.
  void copy_from(const Tensor& src);
  // bytes() from host memory into this tensor, and from this tensor into host memory; both return
  // when the copy has finished (on the CPU: memcpy). For host loops over a device tensor.
  void copy_from_host(const void* host_src);
  void copy_to_host(void* host_dst) const;

 private:
  struct Storage;
  std::shared_ptr<Storage> storage_;
  int64_t offset_ = 0;  // elements
  Shape shape_;
  DType dtype_ = DType::kF32;
};

// A view of `shape` inside `buffer`, (re)allocating `buffer` on `device` when it is undefined,
// of another dtype, or smaller than numel(shape). Scratch space that grows to the largest batch.
Tensor workspace(Tensor& buffer, Device& device, const Shape& shape, DType dtype);

}  // namespace dpt
