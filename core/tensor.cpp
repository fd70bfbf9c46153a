// Tensor storage, views, dtype checks and copies between devices.
#include "core/tensor.h"

#include <vector>

#include "devices/error.h"

namespace dpt {

struct Tensor::Storage {
  Storage(Device& device, std::size_t bytes) : device(device), ptr(device.allocate(bytes)) {}
  Storage(Device& device, std::shared_ptr<void> memory)
      : device(device), ptr(memory.get()), external(std::move(memory)) {}
  ~Storage() {
    if (external == nullptr) device.deallocate(ptr);
  }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  Device& device;
  void* ptr;
  std::shared_ptr<void> external;  // memory owned elsewhere (kept alive here), or null
};

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kBF16:
    case DType::kF16:
      return 2;
    case DType::kF32:
    case DType::kI32:
      return 4;
    case DType::kF64:
    case DType::kI64:
      return 8;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "float32";
    case DType::kF64:
      return "float64";
    case DType::kBF16:
      return "bfloat16";
    case DType::kF16:
      return "float16";
    case DType::kI32:
      return "int32";
    case DType::kI64:
      return "int64";
  }
  return "?";
}

std::string shape_string(const Shape& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

int64_t shape_numel(const Shape& shape) {
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  return numel;
}

Tensor::Tensor(Device& device, Shape shape, DType dtype) : shape_(std::move(shape)), dtype_(dtype) {
  for (int64_t d : shape_)
    DPT_CHECK(d >= 0) << "negative dimension in shape " << shape_string(shape_);
  storage_ = std::make_shared<Storage>(device, bytes());
  fill_zero();
}

Tensor::Tensor(Device& device, Shape shape, DType dtype, std::shared_ptr<void> memory)
    : shape_(std::move(shape)), dtype_(dtype) {
  for (int64_t d : shape_)
    DPT_CHECK(d >= 0) << "negative dimension in shape " << shape_string(shape_);
  DPT_CHECK(device.kind() == DeviceKind::kCpu)
      << "a tensor over outside memory must be on the CPU, not " << device.name();
  DPT_CHECK(memory != nullptr || bytes() == 0) << "a tensor over outside memory without memory";
  storage_ = std::make_shared<Storage>(device, std::move(memory));
  fill_zero();
}

Device& Tensor::device() const {
  DPT_CHECK(defined()) << "use of an undefined tensor";
  return storage_->device;
}

int64_t Tensor::dim(int axis) const {
  DPT_CHECK(axis >= 0 && axis < ndim())
      << "axis " << axis << " out of range for " << shape_string(shape_);
  return shape_[axis];
}

void* Tensor::raw() const {
  DPT_CHECK(defined()) << "use of an undefined tensor";
  return static_cast<char*>(storage_->ptr) + offset_ * static_cast<int64_t>(dtype_size(dtype_));
}

namespace {
template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::kF32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::kF64;
}
template <>
constexpr DType dtype_of<int32_t>() {
  return DType::kI32;
}
template <>
constexpr DType dtype_of<int64_t>() {
  return DType::kI64;
}
}  // namespace

template <typename T>
T* Tensor::data() const {
  constexpr DType expected = dtype_of<T>();
  DPT_CHECK(dtype_ == expected) << "tensor is " << dtype_name(dtype_) << ", accessed as "
                                << dtype_name(expected);
  return static_cast<T*>(raw());
}
template float* Tensor::data<float>() const;
template double* Tensor::data<double>() const;
template int32_t* Tensor::data<int32_t>() const;
template int64_t* Tensor::data<int64_t>() const;

Tensor Tensor::slice(int64_t offset, Shape shape) const {
  DPT_CHECK(offset >= 0 && offset + shape_numel(shape) <= numel())
      << "slice of " << shape_string(shape) << " at " << offset << " exceeds "
      << shape_string(shape_);
  Tensor view = *this;
  view.offset_ = offset_ + offset;
  view.shape_ = std::move(shape);
  return view;
}

Tensor Tensor::reshape(Shape shape) const {
  DPT_CHECK(shape_numel(shape) == numel())
      << "cannot reshape " << shape_string(shape_) << " to " << shape_string(shape);
  return slice(0, std::move(shape));
}

Tensor Tensor::rows(int64_t rows) const {
  DPT_CHECK(ndim() >= 1 && rows >= 0 && rows <= shape_[0])
      << "rows(" << rows << ") of " << shape_string(shape_);
  Shape shape = shape_;
  shape[0] = rows;
  return slice(0, std::move(shape));
}

void Tensor::fill_zero() {
  if (numel() > 0) device().zero(raw(), bytes());
}

void Tensor::copy_from(const Tensor& src) {
  DPT_CHECK(src.dtype() == dtype_ && src.numel() == numel())
      << "copy of " << dtype_name(src.dtype()) << shape_string(src.shape()) << " into "
      << dtype_name(dtype_) << shape_string(shape_);
  if (bytes() == 0) return;
  Device& to = device();
  Device& from = src.device();
  if (&to == &from) {
    to.copy(raw(), src.raw(), bytes());
  } else if (from.kind() == DeviceKind::kCpu) {
    to.copy_from_host(raw(), src.raw(), bytes());
  } else if (to.kind() == DeviceKind::kCpu) {
    from.copy_to_host(raw(), src.raw(), bytes());
  } else {  // two GPUs: through host memory
    std::vector<unsigned char> host(bytes());
    from.copy_to_host(host.data(), src.raw(), bytes());
    to.copy_from_host(raw(), host.data(), bytes());
  }
}

void Tensor::copy_from_host(const void* host_src) {
  if (bytes() > 0) device().copy_from_host(raw(), host_src, bytes());
}

void Tensor::copy_to_host(void* host_dst) const {
  if (bytes() > 0) device().copy_to_host(host_dst, raw(), bytes());
}

Tensor workspace(Tensor& buffer, Device& device, const Shape& shape, DType dtype) {
  if (!buffer.defined() || buffer.dtype() != dtype || buffer.numel() < shape_numel(shape)) {
    buffer = Tensor(device, {shape_numel(shape)}, dtype);
  }
  return buffer.slice(0, shape);
}

}  // namespace dpt
