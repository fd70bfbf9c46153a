// CUDA_CHECK's dpt::Error: the call site, the expression and the runtime's name and text for the
// code; for the sticky errors a failed kernel leaves (an illegal address, a device assert), also
// that an earlier kernel failed and every later call will fail the same way, since the call that
// reports it (a synchronize, a cudaMalloc) is rarely the culprit. Needs no GPU: the checked
// expressions are error codes, and naming a code needs no driver.
#include <gtest/gtest.h>

#include <string>

#include "devices/cuda/cuda_check.h"
#include "devices/error.h"

namespace dpt {
namespace {

std::string message_of(cudaError_t status) {
  try {
    CUDA_CHECK(status);
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kInternal) << error.what();
    return error.what();
  }
  ADD_FAILURE() << "CUDA_CHECK did not throw for " << static_cast<int>(status);
  return "";
}

constexpr const char* kEarlierKernel = "a kernel queued earlier on this GPU failed";

TEST(CudaCheck, SuccessDoesNotThrow) { EXPECT_NO_THROW(CUDA_CHECK(cudaSuccess)); }

TEST(CudaCheck, NamesTheCallSiteTheExpressionAndTheCode) {
  const std::string message = message_of(cudaErrorInvalidValue);
  EXPECT_NE(message.find("cuda_check_test.cpp:"), std::string::npos) << message;
  EXPECT_NE(message.find(": status: cudaErrorInvalidValue ("), std::string::npos) << message;
  // An error of this call: no note about earlier kernels.
  EXPECT_EQ(message.find(kEarlierKernel), std::string::npos) << message;
  EXPECT_EQ(message_of(cudaErrorMemoryAllocation).find(kEarlierKernel), std::string::npos);
  EXPECT_EQ(message_of(cudaErrorNotReady).find(kEarlierKernel), std::string::npos);
}

TEST(CudaCheck, StickyErrorsSayAnEarlierKernelFailed) {
  for (cudaError_t sticky : {cudaErrorIllegalAddress, cudaErrorLaunchFailure, cudaErrorAssert,
                             cudaErrorMisalignedAddress, cudaErrorIllegalInstruction,
                             cudaErrorHardwareStackError, cudaErrorLaunchTimeout}) {
    const std::string message = message_of(sticky);
    EXPECT_NE(message.find(cudaGetErrorName(sticky)), std::string::npos) << message;
    EXPECT_NE(message.find(kEarlierKernel), std::string::npos) << message;
    EXPECT_NE(message.find("every later CUDA call of this process fails"), std::string::npos)
        << message;
  }
}

}  // namespace
}  // namespace dpt
