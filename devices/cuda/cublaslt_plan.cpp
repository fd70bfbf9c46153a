// CublasLtPlan: the descriptor set-up that cuda_gemm did on every call before plans were cached.
#include "devices/cuda/cublaslt_plan.h"

#include <cstdint>

#include "devices/error.h"

namespace dpt {
namespace {

// RAII for the preference, needed only while the heuristic runs.
struct Preference {
  const CublasLtLibrary& lt;
  cublasLtMatmulPreference_t handle = nullptr;
  ~Preference() {
    if (handle) lt.preference_destroy(handle);
  }
};

}  // namespace

uint32_t cublaslt_alignment_of(const void* ptr) {
  const auto address = reinterpret_cast<uintptr_t>(ptr);
  uint32_t alignment = 256;
  while (alignment > 1 && address % alignment != 0) alignment /= 2;
  return alignment;
}

CublasLtPlan::~CublasLtPlan() {
  if (c_) lt_.layout_destroy(c_);
  if (b_) lt_.layout_destroy(b_);
  if (a_) lt_.layout_destroy(a_);
  if (op_) lt_.desc_destroy(op_);
}

std::unique_ptr<CublasLtPlan> CublasLtPlan::create(const CudaDevice& device, const GemmPlanKey& key,
                                                   const void* epilogue_vector) {
  const CublasLtLibrary& lt = device.cublaslt();
  std::unique_ptr<CublasLtPlan> plan(new CublasLtPlan(lt));
  const auto type = static_cast<cudaDataType_t>(key.input_type);
  const auto compute = static_cast<cublasComputeType_t>(key.compute_type);
  const auto epilogue = static_cast<cublasLtEpilogue_t>(key.epilogue);
  lt.check(lt.desc_create(&plan->op_, compute, CUDA_R_32F), "cublasLtMatmulDescCreate");
  // cuBLASLt's A is our B, its B our A (see cuda_gemm.cpp).
  const cublasOperation_t op_first = key.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_second = key.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  lt.check(lt.desc_set(plan->op_, CUBLASLT_MATMUL_DESC_TRANSA, &op_first, sizeof(op_first)),
           "set TRANSA");
  lt.check(lt.desc_set(plan->op_, CUBLASLT_MATMUL_DESC_TRANSB, &op_second, sizeof(op_second)),
           "set TRANSB");
  // The bias (added) or the bias gradient (written) shares cuBLASLt's BIAS_POINTER, set here for
  // the heuristic and again by each run(); its type defaults to C's, float32, in both cases.
  plan->has_epilogue_ = epilogue != CUBLASLT_EPILOGUE_DEFAULT;
  if (plan->has_epilogue_) {
    lt.check(lt.desc_set(plan->op_, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)),
             "set EPILOGUE");
    lt.check(lt.desc_set(plan->op_, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &epilogue_vector,
                         sizeof(epilogue_vector)),
             "set BIAS_POINTER");
  }
  // Row-major sizes of A and B as stored; column-major views of a row-major [rows, cols] with
  // stride ld are [cols, rows], ld.
  const int64_t a_cols = key.trans_a ? key.m : key.k, a_rows = key.trans_a ? key.k : key.m;
  const int64_t b_cols = key.trans_b ? key.k : key.n, b_rows = key.trans_b ? key.n : key.k;
  lt.check(lt.layout_create(&plan->a_, type, static_cast<uint64_t>(b_cols),
                            static_cast<uint64_t>(b_rows), key.ldb),
           "cublasLtMatrixLayoutCreate(B)");
  lt.check(lt.layout_create(&plan->b_, type, static_cast<uint64_t>(a_cols),
                            static_cast<uint64_t>(a_rows), key.lda),
           "cublasLtMatrixLayoutCreate(A)");
  lt.check(lt.layout_create(&plan->c_, CUDA_R_32F, static_cast<uint64_t>(key.n),
                            static_cast<uint64_t>(key.m), key.ldc),
           "cublasLtMatrixLayoutCreate(C)");

  Preference preference{lt};
  lt.check(lt.preference_create(&preference.handle), "cublasLtMatmulPreferenceCreate");
  plan->workspace_bytes_ = key.workspace_bytes;
  lt.check(lt.preference_set(preference.handle, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                             &plan->workspace_bytes_, sizeof(plan->workspace_bytes_)),
           "set MAX_WORKSPACE_BYTES");
  const cublasLtMatmulPreferenceAttributes_t alignments[] = {
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
  for (int i = 0; i < 4; ++i) {
    lt.check(
        lt.preference_set(preference.handle, alignments[i], &key.align[i], sizeof(key.align[i])),
        "set MIN_ALIGNMENT");
  }
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t status =
      lt.heuristic(device.cublaslt_handle(), plan->op_, plan->a_, plan->b_, plan->c_, plan->c_,
                   preference.handle, 1, &result, &found);
  // Only results whose state is SUCCESS are usable (cublasLt.h: "inspect
  // heuristicResultsArray[0 to (returnAlgoCount - 1)].state").
  const cublasStatus_t state = found > 0 ? result.state : CUBLAS_STATUS_SUCCESS;
  if (status == CUBLAS_STATUS_SUCCESS && state != CUBLAS_STATUS_SUCCESS) found = 0;
  // Epilogues exist for some types, layouts, alignments and GPUs only: cuBLASLt answers
  // NOT_SUPPORTED (or INVALID_VALUE, as PyTorch met for a dimension of 1) or finds no algorithm
  // for the others, and the caller runs without it (the key is remembered as such). Any other
  // status (ALLOC_FAILED, INTERNAL_ERROR: not an answer about the epilogue) is an error, as for a
  // plain GEMM.
  const bool unavailable = status == CUBLAS_STATUS_NOT_SUPPORTED ||
                           status == CUBLAS_STATUS_INVALID_VALUE ||
                           (status == CUBLAS_STATUS_SUCCESS && found == 0);
  if (plan->has_epilogue_ && unavailable) return nullptr;
  lt.check(status, "cublasLtMatmulAlgoGetHeuristic");
  DPT_CHECK(found > 0) << "cuBLASLt: no algorithm for m=" << key.m << " n=" << key.n
                       << " k=" << key.k << (type != CUDA_R_32F ? " with 16-bit inputs" : "")
                       << " (heuristic result state " << int(state) << ")";
  plan->algo_ = result.algo;
  return plan;
}

void CublasLtPlan::run(CudaDevice& device, float alpha, const void* a, const void* b, float beta,
                       float* c, const void* epilogue_vector) {
  // cuBLASLt reads the descriptor while cublasLtMatmul queues the kernel, so the next call may
  // set another pointer as soon as this one has returned.
  if (has_epilogue_) {
    lt_.check(lt_.desc_set(op_, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &epilogue_vector,
                           sizeof(epilogue_vector)),
              "set BIAS_POINTER");
  }
  lt_.check(lt_.matmul(device.cublaslt_handle(), op_, &alpha, b, a_, a, b_, &beta, c, c_, c, c_,
                       &algo_, device.gemm_workspace(), workspace_bytes_, device.stream()),
            "cublasLtMatmul");
}

}  // namespace dpt
