// The "op on every device" harness for tests/gpu (ggml's test-backend-ops idea): a test is
// parameterized by DeviceKind; put()/get() move host vectors to and from the device under test,
// so one test body runs an op on the CPU (the reference implementation from core/ and optim/) and
// on the GPU (the CUDA kernel) on the same inputs and checks both against the same expectation.
// The CUDA instance skips with the probe's reason when no GPU is usable.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/dense.h"
#include "core/random.h"
#include "core/tensor.h"
#include "devices/cpu_device.h"
#include "devices/cuda/cuda_device.h"
#include "devices/cuda_support.h"

namespace dpt {

class OpsOnDevice : public ::testing::TestWithParam<DeviceKind> {
 protected:
  void SetUp() override {
    if (GetParam() != DeviceKind::kCuda) return;
    const GpuProbe probe = probe_gpus();
    const std::vector<GpuInfo> gpus = usable_gpus(probe);
    if (gpus.empty()) GTEST_SKIP() << "no usable GPU: " << probe.reason;
    cuda_ = std::make_unique<CudaDevice>(gpus.front().index);
  }
  void TearDown() override {
    for (void* ptr : device_buffers_) cuda_->deallocate(ptr);
  }

  bool on_gpu() const { return cuda_ != nullptr; }
  CudaDevice& cuda() { return *cuda_; }
  CpuDevice& cpu() { return cpu_; }

  // A copy of `values` on the device under test; lives until the end of the test.
  template <typename T>
  T* put(const std::vector<T>& values) {
    if (!on_gpu()) {
      auto& kept = host_buffers<T>();
      kept.push_back(values);
      return kept.back().data();
    }
    void* ptr = cuda_->allocate(values.size() * sizeof(T) + 1);
    device_buffers_.push_back(ptr);
    cuda_->copy_from_host(ptr, values.data(), values.size() * sizeof(T));
    return static_cast<T*>(ptr);
  }
  // The n values at `ptr` on the device under test.
  template <typename T>
  std::vector<T> get(const T* ptr, std::size_t n) {
    std::vector<T> values(n);
    if (on_gpu()) {
      cuda_->copy_to_host(values.data(), ptr, n * sizeof(T));
    } else {
      std::copy(ptr, ptr + n, values.begin());
    }
    return values;
  }

 private:
  template <typename T>
  std::deque<std::vector<T>>& host_buffers();

  CpuDevice cpu_{CpuDeviceOptions{2, CpuGemmLibrary::kOpenBlas, MatmulPrecision::kFp32}};
  std::unique_ptr<CudaDevice> cuda_;
  std::vector<void*> device_buffers_;
  std::deque<std::vector<float>> float_buffers_;
  std::deque<std::vector<int32_t>> int_buffers_;
  std::deque<std::vector<uint16_t>> half_buffers_;  // bf16 / fp16 bit patterns
};

template <>
inline std::deque<std::vector<float>>& OpsOnDevice::host_buffers<float>() {
  return float_buffers_;
}
template <>
inline std::deque<std::vector<int32_t>>& OpsOnDevice::host_buffers<int32_t>() {
  return int_buffers_;
}

template <>
inline std::deque<std::vector<uint16_t>>& OpsOnDevice::host_buffers<uint16_t>() {
  return half_buffers_;
}

inline std::string device_kind_name(const ::testing::TestParamInfo<DeviceKind>& info) {
  return info.param == DeviceKind::kCuda ? "cuda" : "cpu";
}

// n standard normal values times `scale`, reproducible from `stream`.
inline std::vector<float> normal_values(std::size_t n, uint64_t stream, double scale = 1.0) {
  RandomStream random(7, stream);
  std::vector<float> values(n);
  for (float& v : values) v = static_cast<float>(scale * random.normal());
  return values;
}

// A CPU tensor holding `values`.
inline Tensor cpu_tensor(CpuDevice& device, Shape shape, const std::vector<float>& values) {
  Tensor tensor(device, std::move(shape), DType::kF32);
  std::copy(values.begin(), values.end(), tensor.data<float>());
  return tensor;
}

// The Dense layer of the Dense tests' cases: `in` inputs to `units` outputs, with a bias or not,
// the activation `kind` fused (leaky ReLU's slope 0.1) or none, GEMMs at `precision` on a GPU.
inline Dense dense_layer(Device& device, int64_t in, int64_t units, bool bias,
                         std::optional<proto::ActivationKind> kind,
                         GpuMatmul precision = GpuMatmul::kFp32) {
  proto::DenseConfig config;
  config.set_units(units);
  config.set_bias(bias);
  std::optional<ActivationSpec> spec;
  if (kind) spec = ActivationSpec{*kind, 0.1f};
  return Dense(device, "dense", 0, in, config, spec, precision);
}

// |a - b| <= tolerance * max(|a|, |b|, 1) element-wise, reporting the first few mismatches.
inline void expect_close(const std::vector<float>& actual, const std::vector<double>& expected,
                         double tolerance, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  int reported = 0;
  for (std::size_t i = 0; i < actual.size() && reported < 5; ++i) {
    const double a = actual[i], b = expected[i];
    const double scale = std::max({std::fabs(a), std::fabs(b), 1.0});
    if (!(std::fabs(a - b) <= tolerance * scale)) {
      ADD_FAILURE() << what << ": element " << i << " is " << a << ", expected " << b;
      ++reported;
    }
  }
}

inline std::vector<double> as_double(const std::vector<float>& values) {
  return std::vector<double>(values.begin(), values.end());
}

}  // namespace dpt
