// cuda_gemm: row-major GEMM through cuBLASLt. cuBLASLt is column-major; a row-major matrix with
// row stride ld is the column-major transpose with the same ld, so C = op(A) op(B) is computed as
// C^T = op(B)^T op(A)^T: B goes in cuBLASLt's A slot, A in its B slot, and m and n swap. The bias
// of a row-major column j is then per row of the column-major result, which is what cuBLASLt's
// BIAS epilogues add; for the same reason the bias gradient of our A (row sums of op(A)) is
// cuBLASLt's BGRADB (reduction of its B over k), as in PyTorch's and TransformerEngine's weight-
// gradient GEMMs. Where cuBLASLt has no algorithm for an epilogue, the GEMM runs without it: the
// bias (and ReLU) then take one element-wise pass, the bias gradient is left to the caller.
// bf16 / fp16 inputs are packed 16-bit copies (the caller's, or rounded here into pool scratch),
// multiplied with CUBLAS_COMPUTE_32F into the float32 C. The cuBLASLt set-up of a shape
// (descriptors, layouts, the algorithm heuristic) is done once per plan key and kept in the
// device's plan cache (devices/gemm_plan_cache.h, devices/cuda/cublaslt_plan.h).
#include <cstdint>
#include <memory>
#include <mutex>

#include "devices/cuda/cublaslt_plan.h"
#include "devices/cuda/cuda_ops.h"
#include "devices/cuda/pool_block.h"
#include "devices/error.h"

namespace dpt {
namespace {

// The 16-bit operand: the caller's packed copy, or `src` rounded into `scratch`.
const uint16_t* operand_16bit(CudaDevice& device, CudaGemmInput input, const float* src,
                              const uint16_t* given, int64_t rows, int64_t cols, int64_t ld,
                              std::unique_ptr<PoolBlock>& scratch) {
  if (given != nullptr) return given;
  scratch = std::make_unique<PoolBlock>(device, static_cast<std::size_t>(rows * cols) * 2);
  auto* dst = scratch->as<uint16_t>();
  cuda_round_to_16bit(device, input, src, rows, cols, ld, dst);
  return dst;
}

// One call's operands after the 16-bit rounding: what both the fused and the plain attempt use.
struct Operands {
  const void* a;  // our A and B as multiplied (float32, or packed 16-bit)
  const void* b;
  int64_t a_rows, a_cols, lda, b_rows, b_cols, ldb;
  cudaDataType_t type;
  cublasComputeType_t compute;
};

// The cuBLASLt epilogue of one attempt and its vector (the bias read, or the bias gradient
// written); DEFAULT and null for a plain GEMM.
struct Epilogue {
  cublasLtEpilogue_t kind = CUBLASLT_EPILOGUE_DEFAULT;
  const void* vector = nullptr;
};

// Runs the GEMM through cuBLASLt with `epilogue`. Returns false, having queued nothing, when
// cuBLASLt has no algorithm for a call with an epilogue; a plain call without one throws. The
// plan (descriptors, layouts, algorithm) comes from the device's cache; a key without an
// algorithm is cached as such, so it is asked once.
bool run_matmul(CudaDevice& device, const GemmShape& s, float alpha, const Operands& in, float beta,
                float* c, const Epilogue& epilogue) {
  GemmPlanKey key;
  key.m = s.m, key.n = s.n, key.k = s.k, key.trans_a = s.trans_a, key.trans_b = s.trans_b;
  key.lda = in.lda, key.ldb = in.ldb, key.ldc = s.ldc;
  key.input_type = static_cast<int32_t>(in.type);
  key.compute_type = static_cast<int32_t>(in.compute);
  key.epilogue = static_cast<int32_t>(epilogue.kind);
  key.epilogue_align = epilogue.vector ? cublaslt_alignment_of(epilogue.vector) : 0;
  // cuBLASLt's A is our B, its B our A; C and D are both c.
  key.align[0] = cublaslt_alignment_of(in.b);
  key.align[1] = cublaslt_alignment_of(in.a);
  key.align[2] = key.align[3] = cublaslt_alignment_of(c);
  key.workspace_bytes = device.gemm_workspace_bytes();

  // One call at a time uses a plan (run() sets its epilogue pointer, then queues): in dpt only
  // the thread that runs forward and backward multiplies, so the lock is never contended.
  std::lock_guard<std::mutex> lock(device.gemm_mutex());
  GemmPlanCache& plans = device.gemm_plans();
  GemmPlanCache::Lookup lookup = plans.find(key);
  if (!lookup.found)
    lookup.plan = plans.insert(key, CublasLtPlan::create(device, key, epilogue.vector));
  if (lookup.plan == nullptr) return false;  // only a key with an epilogue has no plan
  static_cast<CublasLtPlan*>(lookup.plan)->run(device, alpha, in.a, in.b, beta, c, epilogue.vector);
  return true;
}

}  // namespace

bool cuda_gemm(CudaDevice& device, const GemmShape& s, float alpha, const float* a, const float* b,
               float beta, float* c, const CudaGemmOptions& options) {
  DPT_CHECK(s.m >= 0 && s.n >= 0 && s.k >= 0)
      << "cuda_gemm: negative shape m=" << s.m << " n=" << s.n << " k=" << s.k;
  if (s.m == 0 || s.n == 0) return false;
  DPT_CHECK(s.k > 0) << "cuda_gemm: k must be > 0 (got " << s.k << ")";
  Operands in{};
  // Row-major sizes of A and B as stored.
  in.a_cols = s.trans_a ? s.m : s.k, in.a_rows = s.trans_a ? s.k : s.m;
  in.b_cols = s.trans_b ? s.k : s.n, in.b_rows = s.trans_b ? s.n : s.k;
  DPT_CHECK(s.lda >= in.a_cols && s.ldb >= in.b_cols && s.ldc >= s.n)
      << "cuda_gemm: strides lda=" << s.lda << " ldb=" << s.ldb << " ldc=" << s.ldc
      << " are smaller than rows of " << in.a_cols << ", " << in.b_cols << " and " << s.n;
  DPT_CHECK(!options.relu || options.bias != nullptr)
      << "cuda_gemm: the relu epilogue needs a bias (cuBLASLt RELU_BIAS)";
  DPT_CHECK(options.bias == nullptr || options.a_row_sums == nullptr)
      << "cuda_gemm: a bias and a_row_sums in one call (cuBLASLt has one epilogue vector)";
  // The row sums are of A itself; alpha = 1 keeps them the bias gradient whether or not the
  // epilogue would scale them (cuBLASLt does not say).
  DPT_CHECK(options.a_row_sums == nullptr || alpha == 1.0f)
      << "cuda_gemm: a_row_sums needs alpha = 1 (got " << alpha << ")";

  const CudaGemmInput input = options.tf32 ? CudaGemmInput::kTf32 : options.input;
  const bool half = input == CudaGemmInput::kBf16 || input == CudaGemmInput::kFp16;
  DPT_CHECK(half || (options.a16 == nullptr && options.b16 == nullptr))
      << "cuda_gemm: 16-bit operand copies given for a float32 / TF32 GEMM";
  // 16-bit operands are packed: their row stride is their stored row length.
  std::unique_ptr<PoolBlock> a_scratch, b_scratch;
  in.a = a, in.b = b, in.lda = s.lda, in.ldb = s.ldb;
  in.type = CUDA_R_32F;
  if (half) {
    in.a = operand_16bit(device, input, a, options.a16, in.a_rows, in.a_cols, s.lda, a_scratch);
    in.b = operand_16bit(device, input, b, options.b16, in.b_rows, in.b_cols, s.ldb, b_scratch);
    in.lda = in.a_cols, in.ldb = in.b_cols;
    in.type = input == CudaGemmInput::kBf16 ? CUDA_R_16BF : CUDA_R_16F;
  }
  in.compute = input == CudaGemmInput::kTf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  if (options.bias != nullptr) {
    const Epilogue bias{options.relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS,
                        options.bias};
    if (run_matmul(device, s, alpha, in, beta, c, bias)) return false;
    // No fused algorithm for this shape, alignment or GPU: the plain GEMM, then the bias (and
    // ReLU) in one element-wise pass over the packed C, which is what the epilogue computes.
    DPT_CHECK(s.ldc == s.n) << "cuda_gemm: cuBLASLt has no bias epilogue for m=" << s.m
                            << " n=" << s.n << " k=" << s.k << ", and the element-wise bias "
                            << "pass needs ldc == n (got ldc=" << s.ldc << ")";
    run_matmul(device, s, alpha, in, beta, c, Epilogue{});
    const CudaActivationSpec spec{options.relu ? CudaActivation::kRelu : CudaActivation::kIdentity};
    cuda_bias_activation_forward(device, spec, c, options.bias, c, s.m, s.n);
    return false;
  }
  if (options.a_row_sums != nullptr &&
      run_matmul(device, s, alpha, in, beta, c,
                 Epilogue{CUBLASLT_EPILOGUE_BGRADB, options.a_row_sums})) {
    return true;
  }
  run_matmul(device, s, alpha, in, beta, c, Epilogue{});
  return false;
}

}  // namespace dpt
