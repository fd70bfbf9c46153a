// cuda_gemm: row-major GEMM through cuBLASLt. cuBLASLt is column-major; a row-major matrix with
// row stride ld is the column-major transpose with the same ld, so C = op(A) op(B) is computed as
// C^T = op(B)^T op(A)^T: B goes in cuBLASLt's A slot, A in its B slot, and m and n swap. The bias
// of a row-major column j is then per row of the column-major result, which is what cuBLASLt's
// BIAS epilogues add; for the same reason the bias gradient of our A (row sums of op(A)) is
// cuBLASLt's BGRADB (reduction of its B over k), as in PyTorch's and TransformerEngine's weight-
// gradient GEMMs. bf16 / fp16 inputs are packed 16-bit copies (the caller's, or rounded here into
// pool scratch), multiplied with CUBLAS_COMPUTE_32F into the float32 C.
#include <cstdint>
#include <memory>

#include "devices/cuda/cuda_ops.h"
#include "devices/cuda/pool_block.h"
#include "devices/error.h"

namespace dpt {
namespace {

// RAII holders for the cuBLASLt descriptors of one call.
struct Descriptors {
  const CublasLtLibrary& lt;
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulPreference_t preference = nullptr;
  explicit Descriptors(const CublasLtLibrary& library) : lt(library) {}
  ~Descriptors() {
    if (preference) lt.preference_destroy(preference);
    if (c) lt.layout_destroy(c);
    if (b) lt.layout_destroy(b);
    if (a) lt.layout_destroy(a);
    if (op) lt.desc_destroy(op);
  }
};

// The largest power of two (up to 256) dividing the address: cuBLASLt assumes 256-byte aligned
// operands unless told otherwise, and views into the flat buffers are only float-aligned.
uint32_t alignment_of(const void* ptr) {
  const auto address = reinterpret_cast<uintptr_t>(ptr);
  uint32_t alignment = 256;
  while (alignment > 1 && address % alignment != 0) alignment /= 2;
  return alignment;
}

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

// Runs the GEMM through cuBLASLt, with the BGRADB epilogue writing `row_sums` when it is not null.
// Returns false, having queued nothing, when cuBLASLt has no algorithm for the fused call; a
// plain call without one throws.
bool run_matmul(CudaDevice& device, const GemmShape& s, float alpha, const Operands& in, float beta,
                float* c, const CudaGemmOptions& options, float* row_sums) {
  const CublasLtLibrary& lt = device.cublaslt();
  Descriptors d(lt);
  lt.check(lt.desc_create(&d.op, in.compute, CUDA_R_32F), "cublasLtMatmulDescCreate");
  // cuBLASLt's A is our B, its B our A (see the file comment).
  const cublasOperation_t op_first = s.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_second = s.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  lt.check(lt.desc_set(d.op, CUBLASLT_MATMUL_DESC_TRANSA, &op_first, sizeof(op_first)),
           "set TRANSA");
  lt.check(lt.desc_set(d.op, CUBLASLT_MATMUL_DESC_TRANSB, &op_second, sizeof(op_second)),
           "set TRANSB");
  // The bias (added) or the bias gradient (written) shares cuBLASLt's BIAS_POINTER; its type
  // defaults to C's, float32, in both cases.
  const void* epilogue_vector = nullptr;
  cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  if (options.bias != nullptr) {
    epilogue = options.relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
    epilogue_vector = options.bias;
  } else if (row_sums != nullptr) {
    epilogue = CUBLASLT_EPILOGUE_BGRADB;
    epilogue_vector = row_sums;
  }
  if (epilogue_vector != nullptr) {
    lt.check(lt.desc_set(d.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)),
             "set EPILOGUE");
    lt.check(lt.desc_set(d.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &epilogue_vector,
                         sizeof(epilogue_vector)),
             "set BIAS_POINTER");
  }
  // Column-major views: stored row-major [rows, cols] with stride ld is [cols, rows], ld.
  lt.check(lt.layout_create(&d.a, in.type, static_cast<uint64_t>(in.b_cols),
                            static_cast<uint64_t>(in.b_rows), in.ldb),
           "cublasLtMatrixLayoutCreate(B)");
  lt.check(lt.layout_create(&d.b, in.type, static_cast<uint64_t>(in.a_cols),
                            static_cast<uint64_t>(in.a_rows), in.lda),
           "cublasLtMatrixLayoutCreate(A)");
  lt.check(lt.layout_create(&d.c, CUDA_R_32F, static_cast<uint64_t>(s.n),
                            static_cast<uint64_t>(s.m), s.ldc),
           "cublasLtMatrixLayoutCreate(C)");

  lt.check(lt.preference_create(&d.preference), "cublasLtMatmulPreferenceCreate");
  const uint64_t workspace_bytes = device.gemm_workspace_bytes();
  lt.check(lt.preference_set(d.preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                             &workspace_bytes, sizeof(workspace_bytes)),
           "set MAX_WORKSPACE_BYTES");
  const struct {
    cublasLtMatmulPreferenceAttributes_t attribute;
    const void* ptr;
  } alignments[] = {{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, in.b},
                    {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, in.a},
                    {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, c},
                    {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, c}};
  for (const auto& entry : alignments) {
    const uint32_t bytes = alignment_of(entry.ptr);
    lt.check(lt.preference_set(d.preference, entry.attribute, &bytes, sizeof(bytes)),
             "set MIN_ALIGNMENT");
  }
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t status = lt.heuristic(device.cublaslt_handle(), d.op, d.a, d.b, d.c, d.c,
                                             d.preference, 1, &result, &found);
  // The bias-gradient epilogue exists for some types, layouts and GPUs only: cuBLASLt answers
  // NOT_SUPPORTED or finds no algorithm for the others, and the caller sums without it.
  if (row_sums != nullptr && (status != CUBLAS_STATUS_SUCCESS || found == 0)) return false;
  lt.check(status, "cublasLtMatmulAlgoGetHeuristic");
  DPT_CHECK(found > 0) << "cuBLASLt: no algorithm for m=" << s.m << " n=" << s.n << " k=" << s.k
                       << (options.bias ? " with a bias epilogue" : "")
                       << (in.type != CUDA_R_32F ? " with 16-bit inputs" : "");
  lt.check(lt.matmul(device.cublaslt_handle(), d.op, &alpha, in.b, d.a, in.a, d.b, &beta, c, d.c, c,
                     d.c, &result.algo, device.gemm_workspace(), workspace_bytes, device.stream()),
           "cublasLtMatmul");
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
  if (options.a_row_sums != nullptr &&
      run_matmul(device, s, alpha, in, beta, c, options, options.a_row_sums)) {
    return true;
  }
  run_matmul(device, s, alpha, in, beta, c, options, nullptr);
  return false;
}

}  // namespace dpt
