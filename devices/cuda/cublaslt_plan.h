// CublasLtPlan: what cuBLASLt needs to run one GemmPlanKey (devices/gemm_plan_cache.h): the
// matmul descriptor, the three layouts and the algorithm its heuristic chose, created once and
// kept in the CudaDevice's plan cache, so a GEMM call only sets its pointers. Row-major to
// column-major as devices/cuda/cuda_gemm.cpp explains: cuBLASLt's A is our B, its B our A.
// The epilogue's vector (bias or bias gradient) is a descriptor attribute, set by each run():
// a plan serves one call at a time (cuda_gemm holds the device's GEMM mutex across run()).
#pragma once

#include <cublasLt.h>

#include <memory>

#include "devices/cuda/cuda_device.h"
#include "devices/gemm_plan_cache.h"

namespace dpt {

class CublasLtPlan : public GemmPlan {
 public:
  // The descriptors of `key` (its input_type, compute_type and epilogue are cudaDataType_t,
  // cublasComputeType_t and cublasLtEpilogue_t values) and the heuristic's first algorithm.
  // Returns null when the key has an epilogue (BIAS, RELU_BIAS, BGRADB) and cuBLASLt's heuristic
  // fails or finds no algorithm for it: epilogues exist for some types, layouts, alignments and
  // GPUs only, and the caller then runs the plain GEMM and an element-wise pass (as PyTorch's
  // gemm_and_bias falls back to its unfused path). Throws dpt::Error for any other failure,
  // naming the shape.
  // `epilogue_vector`: the first call's bias or bias gradient (null without an epilogue), set
  // while the algorithm is chosen, as cuBLASLt sees it on every later call (only its address
  // changes; its alignment is the key's epilogue_align).
  static std::unique_ptr<CublasLtPlan> create(const CudaDevice& device, const GemmPlanKey& key,
                                              const void* epilogue_vector);
  ~CublasLtPlan() override;
  CublasLtPlan(const CublasLtPlan&) = delete;
  CublasLtPlan& operator=(const CublasLtPlan&) = delete;

  // Queues C = alpha * op(A) op(B) + beta * C (+ the epilogue) on the device's stream. `a`, `b`
  // are our operands as multiplied, with the key's types, strides and alignments; `c` float32;
  // `epilogue_vector` the bias (added) or bias gradient (written), ignored without an epilogue.
  void run(CudaDevice& device, float alpha, const void* a, const void* b, float beta, float* c,
           const void* epilogue_vector);

 private:
  explicit CublasLtPlan(const CublasLtLibrary& library) : lt_(library) {}

  const CublasLtLibrary& lt_;
  bool has_epilogue_ = false;
  cublasLtMatmulDesc_t op_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, c_ = nullptr;  // cuBLASLt's A, B, C (= D)
  cublasLtMatmulAlgo_t algo_{};
  uint64_t workspace_bytes_ = 0;
};

// The largest power of two (up to 256) dividing the address: cuBLASLt assumes 256-byte aligned
// operands unless told otherwise, and views into the flat buffers are only float-aligned.
uint32_t cublaslt_alignment_of(const void* ptr);

}  // namespace dpt
