// Tensor storage, views and dtype checks.
#include "core/tensor.h"

#include "devices/error.h"

namespace dpt {

struct Tensor::Storage {
  Storage(Device& device, std::size_t bytes) : device(device), ptr(device.allocate(bytes)) {}
  ~Storage() { device.deallocate(ptr); }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  Device& device;
  void* ptr;
};

std::size_t dtype_size(DType dtype) { return dtype == DType::kF32 ? 4 : 8; }

const char* dtype_name(DType dtype) { return dtype == DType::kF32 ? "float32" : "float64"; }

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

template <typename T>
T* Tensor::data() const {
  constexpr DType expected = sizeof(T) == 4 ? DType::kF32 : DType::kF64;
  DPT_CHECK(dtype_ == expected) << "tensor is " << dtype_name(dtype_) << ", accessed as "
                                << dtype_name(expected);
  return static_cast<T*>(raw());
}
template float* Tensor::data<float>() const;
template double* Tensor::data<double>() const;

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
  device().copy(raw(), src.raw(), bytes());
}

Tensor workspace(Tensor& buffer, Device& device, const Shape& shape, DType dtype) {
  if (!buffer.defined() || buffer.dtype() != dtype || buffer.numel() < shape_numel(shape)) {
    buffer = Tensor(device, {shape_numel(shape)}, dtype);
  }
  return buffer.slice(0, shape);
}

}  // namespace dpt
