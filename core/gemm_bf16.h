// bf16 matrix multiply on the CPU through oneDNN's matmul primitive: C = op(A) op(B) + beta C
// with A and B already in bf16 (core/bf16.h), float32 C and float32 accumulation. Transposes are
// strides, not copies. Primitives are built once per shape and kept (an epoch's last batch is
// smaller, so a layer sees a few shapes). The Dense layer owns one per layer; see core/dense.h.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/gemm.h"
#include "devices/device.h"

namespace dpt {

// Whether `device` runs float32 layer matmuls in bf16 (a CpuDevice with MatmulPrecision::kBf16).
bool bf16_matmul(const Device& device);

// Whether oneDNN runs bf16 matmuls natively on this CPU: its effective ISA includes
// avx512_core_bf16 (the CPU has it and the OS enabled AVX-512 state). Emulators such as valgrind
// report less than /proc/cpuinfo lists.
bool onednn_bf16_native();

class Bf16Gemm {
 public:
  Bf16Gemm();
  ~Bf16Gemm();
  Bf16Gemm(const Bf16Gemm&) = delete;
  Bf16Gemm& operator=(const Bf16Gemm&) = delete;

  // C[m, n] = op(A)[m, k] op(B)[k, n] + beta C, row-major with the strides of `shape` (as
  // core/gemm.h); beta must be 0 (C overwritten) or 1 (accumulate). Runs on the calling thread's
  // OpenMP pool. Throws kInternal naming the shape when oneDNN refuses it.
  void run(const GemmShape& shape, const uint16_t* a, const uint16_t* b, float beta, float* c);

  // oneDNN's name for the kernel it uses for `shape` (e.g. "brg:avx512_core_bf16"; "ref" means
  // emulated, far slower than float32). Builds the primitive when it is not cached yet.
  std::string implementation(const GemmShape& shape, float beta = 0.0f);

  // Number of cached primitives (one per distinct shape and beta).
  std::size_t cached() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dpt
