// The GEMMs of one training step (`dpt bench step`), and timings of running exactly that
// sequence as plain GEMMs: float32 sgemm with a CPU library, or oneDNN's bf16 matmul on operands
// converted to bf16 beforehand (conversion not timed). The step's GFLOP/s is reported as a ratio
// to these, measured in the same run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/gemm.h"
#include "core/model.h"
#include "devices/cpu_device.h"

namespace dpt {

// Per micro-batch, per Dense layer: forward and grad-weight, and grad-input for every layer but
// the first.
std::vector<GemmShape> step_gemms(const Model& model, int64_t batch, int64_t micro);

// 2 m n k summed over `shapes`.
double gemm_flops(const std::vector<GemmShape>& shapes);

// Median seconds of running the whole sequence once (after `warmup` untimed runs), as float32
// sgemm with `library` on `threads` threads.
double time_sgemms(const std::vector<GemmShape>& shapes, int threads, CpuGemmLibrary library,
                   int64_t warmup, int64_t reps);

struct SgemmVsBf16 {
  double sgemm_s = 0;          // oneDNN sgemm, median
  double bf16_s = 0;           // oneDNN bf16 matmul (bf16 inputs, float32 output), median
  std::string implementation;  // oneDNN's bf16 kernel for the first shape
};
// oneDNN's sgemm and its bf16 matmul on the same operands, taking turns run by run so both see
// the same background load (OpenBLAS is left out: its threads keep spinning after a call and
// would slow whatever runs next).
SgemmVsBf16 time_sgemm_vs_bf16(const std::vector<GemmShape>& shapes, int threads, int64_t warmup,
                               int64_t reps);

}  // namespace dpt
