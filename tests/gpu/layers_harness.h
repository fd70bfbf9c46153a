// tests/gpu/ops_harness.h one level up, for core/ and optim/ objects rather than raw kernels: a
// test builds the same layer, loss, optimizer or Model on the CPU (the reference) and on the
// device under test, with the same values, and compares through host copies. The device under
// test is the GPU, or, in the CPU instance (where no GPU is needed), a second CPU device: the
// same test code then runs here, checking the Tensor copies and that the comparison works.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "tests/gpu/ops_harness.h"

namespace dpt {

class LayersOnDevice : public OpsOnDevice {
 protected:
  Device& target() { return on_gpu() ? static_cast<Device&>(cuda()) : other_cpu_; }
  // A copy of `tensor` on the device under test.
  Tensor on_target(const Tensor& tensor) {
    Tensor copy(target(), tensor.shape(), tensor.dtype());
    copy.copy_from(tensor);
    return copy;
  }

 private:
  CpuDevice other_cpu_{CpuDeviceOptions{2, CpuGemmLibrary::kOpenBlas, MatmulPrecision::kFp32}};
};

// `values` rounded to TF32 (10 stored mantissa bits, to nearest even; finite values). Products of
// two such values are exact in float32, so a TF32 GEMM over them differs from the CPU's float32
// GEMM only in summation order: tests feed these to keep ReLU's kink from amplifying TF32's
// rounding into a different branch (dy versus 0) on the two devices.
inline std::vector<float> tf32_values(std::vector<float> values) {
  for (float& value : values) {
    uint32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    bits += 0xFFFu + ((bits >> 13) & 1u);
    bits &= ~0x1FFFu;
    std::memcpy(&value, &bits, sizeof bits);
  }
  return values;
}

// Values with at most 8 significant bits (bf16 rounding of the bit pattern) and magnitudes of
// 2^-6 or more (else 0): exact in bf16, fp16 and TF32, and their pairwise products exact in
// float32, so a GEMM over them differs between number formats only in summation order.
inline std::vector<float> short_values(std::vector<float> values) {
  for (float& value : values) {
    uint32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    bits += 0x7FFFu + ((bits >> 16) & 1u);
    bits &= 0xFFFF0000u;
    std::memcpy(&value, &bits, sizeof bits);
    if (std::fabs(value) < 0x1.0p-6f) value = 0.0f;
  }
  return values;
}

// A float32 tensor's values, from any device.
inline std::vector<float> host_values(const Tensor& tensor) {
  std::vector<float> values(static_cast<std::size_t>(tensor.numel()));
  tensor.copy_to_host(values.data());
  return values;
}

// expect_close on two tensors (any devices): |a - b| <= tolerance * max(|a|, |b|, 1).
inline void expect_tensors_close(const Tensor& actual, const Tensor& expected, double tolerance,
                                 const std::string& what) {
  expect_close(host_values(actual), as_double(host_values(expected)), tolerance, what);
}

}  // namespace dpt
