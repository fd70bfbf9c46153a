// The 16-bit kernels of mixed precision: float32 -> bf16 / fp16 rounding of a strided matrix into
// a packed copy (cuda_gemm's 16-bit operands), 16-bit -> float32 widening, and the inf/NaN check
// with the optional unscale that fp16 dynamic loss scaling (optim/loss_scaler.h) runs on the
// gradients. bf16 rounding is core/bf16.h's bit expression, so it is bit-identical to the CPU's.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "devices/cuda/cuda_launch.h"
#include "devices/cuda/cuda_ops.h"
#include "devices/error.h"

namespace dpt {
namespace {

// core/bf16.h to_bf16: nearest even; NaN made quiet with its sign and upper payload kept.
__device__ uint16_t round_bf16(float value) {
  const uint32_t bits = __float_as_uint(value);
  const uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
  const uint32_t quiet_nan = (bits >> 16) | 0x0040u;
  return static_cast<uint16_t>((bits & 0x7FFFFFFFu) > 0x7F800000u ? quiet_nan : rounded);
}

__device__ uint16_t round_fp16(float value) { return __half_as_ushort(__float2half_rn(value)); }

__global__ void round_to_16bit_kernel(bool bf16, const float* src, int64_t rows, int64_t cols,
                                      int64_t ld, uint16_t* dst) {
  const int64_t n = rows * cols;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float value = src[(i / cols) * ld + i % cols];
    dst[i] = bf16 ? round_bf16(value) : round_fp16(value);
  }
}

__global__ void widen_16bit_kernel(bool bf16, const uint16_t* src, float* dst, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    dst[i] = bf16 ? __uint_as_float(static_cast<uint32_t>(src[i]) << 16)
                  : __half2float(__ushort_as_half(src[i]));
  }
}

// Sets *found when any x[i] is inf or NaN before or after scaling; scales when asked.
__global__ void unscale_and_check_kernel(float* x, int64_t n, float inv_scale, bool scale,
                                         int* found) {
  bool bad = false;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float value = x[i];
    if (scale) {
      const float scaled = value * inv_scale;
      x[i] = scaled;
      bad = bad || !isfinite(scaled);  // also catches a finite value that overflows
    }
    bad = bad || !isfinite(value);
  }
  if (bad) *found = 1;  // benign race: every writer stores the same value
}

bool is_16bit(CudaGemmInput type) {
  return type == CudaGemmInput::kBf16 || type == CudaGemmInput::kFp16;
}

}  // namespace

void cuda_round_to_16bit(CudaDevice& device, CudaGemmInput type, const float* src, int64_t rows,
                         int64_t cols, int64_t ld, uint16_t* dst) {
  DPT_CHECK(is_16bit(type)) << "cuda_round_to_16bit: the type must be bf16 or fp16";
  DPT_CHECK(rows >= 0 && cols >= 0 && ld >= cols)
      << "cuda_round_to_16bit: bad shape rows=" << rows << " cols=" << cols << " ld=" << ld;
  if (rows * cols == 0) return;
  round_to_16bit_kernel<<<grid_for(rows * cols), kThreads, 0, device.stream()>>>(
      type == CudaGemmInput::kBf16, src, rows, cols, ld, dst);
  CUDA_CHECK_LAUNCH("round_to_16bit_kernel");
}

void cuda_widen_16bit(CudaDevice& device, CudaGemmInput type, const uint16_t* src, float* dst,
                      int64_t n) {
  DPT_CHECK(is_16bit(type)) << "cuda_widen_16bit: the type must be bf16 or fp16";
  if (n <= 0) return;
  widen_16bit_kernel<<<grid_for(n), kThreads, 0, device.stream()>>>(type == CudaGemmInput::kBf16,
                                                                    src, dst, n);
  CUDA_CHECK_LAUNCH("widen_16bit_kernel");
}

bool cuda_unscale_and_check(CudaDevice& device, float* x, int64_t n, float inv_scale) {
  if (n <= 0) return false;
  int* found = static_cast<int*>(device.allocate(sizeof(int)));
  int host_found = 0;
  try {
    device.zero(found, sizeof(int));
    unscale_and_check_kernel<<<grid_for(n), kThreads, 0, device.stream()>>>(
        x, n, inv_scale, inv_scale != 1.0f, found);
    CUDA_CHECK_LAUNCH("unscale_and_check_kernel");
    device.copy_to_host(&host_found, found, sizeof(int));
  } catch (...) {
    device.deallocate(found);
    throw;
  }
  device.deallocate(found);
  return host_found != 0;
}

}  // namespace dpt
