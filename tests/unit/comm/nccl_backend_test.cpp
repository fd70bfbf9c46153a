// The "nccl" backend through make_communicator: refused by name without a CUDA device (on every
// machine), and, where a GPU is usable, a world of one in this process (no MPI: no bootstrap)
// through the whole conformance suite with its buffers staged on the GPU
// (tests/staged_communicator.h) and again on host buffers (the backend's own staging), plus
// abort(). Multi-rank runs: backend_conformance_nccl_np*.
// GPU tests skip with the probe's reason where no GPU is usable.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include "comm/communicator.h"
#include "comm/nccl_communicator.h"
#include "comm_conformance.h"
#include "devices/cpu_device.h"
#include "devices/cuda_support.h"
#include "devices/error.h"
#include "expect_error.h"
#include "first_nccl_gpu.h"
#include "staged_communicator.h"

namespace dpt {
namespace {

using testing::error_of;
using ::testing::HasSubstr;

proto::CommConfig nccl_config() {
  proto::CommConfig config;
  config.set_backend("nccl");
  config.set_timeout_s(60);
  return config;
}

std::string config_error(Device* device) {
  return error_of([&] { make_communicator(nccl_config(), device); });
}

using testing::first_nccl_gpu;

TEST(NcclBackend, RefusedOnACpuDevice) {
  CpuDevice cpu;
  EXPECT_THAT(config_error(&cpu), HasSubstr("comm.backend: \"nccl\""));
  EXPECT_THAT(config_error(nullptr), HasSubstr("comm.backend: \"nccl\""));
}

TEST(NcclBackend, ListedExactlyWhenBuilt) {
  const std::vector<std::string> names = communicator_backends();
  const bool listed = std::find(names.begin(), names.end(), "nccl") != names.end();
  EXPECT_EQ(listed, nccl_built());
}

// ncclAvg sums x * (1/n) in the dtype; dpt's average is the sum divided by n. Emulated here with
// each product and partial sum rounded to the dtype (the same order for both): the two agree bit
// for bit for every float dtype where n is a power of two (inputs above the documented
// underflow bound), and not where n is 3; fp16, which agrees on these inputs, is left out for
// its overflow (checked last), so the rule in nccl_average_is_exact is the right one.
TEST(NcclBackend, NcclAverageIsSumOverNExactlyWherePromised) {
  using conformance::decode;
  using conformance::encode;
  const auto round_to = [](DType dtype, double x) { return decode(dtype, encode(dtype, x)); };
  for (DType dtype : {DType::kF32, DType::kF64, DType::kBF16, DType::kF16}) {
    for (int n : {1, 2, 3, 4, 8}) {
      int differ = 0;
      uint64_t state = 12345;
      for (int trial = 0; trial < 2000; ++trial) {
        double premul = 0.0, sum = 0.0;
        for (int rank = 0; rank < n; ++rank) {
          state = conformance::mix(state);
          // |x| in [2^-10, 8): above fp16's bound (2^-14 * 8 = 2^-11) for every n here.
          const double magnitude = std::ldexp(1.0 + (state >> 12) * 0x1p-52, int(state % 13) - 10);
          const double x = round_to(dtype, state & 1 ? magnitude : -magnitude);
          premul = round_to(dtype, premul + round_to(dtype, x * round_to(dtype, 1.0 / n)));
          sum = round_to(dtype, sum + x);
        }
        differ += premul != round_to(dtype, sum / n) ? 1 : 0;
      }
      const bool power_of_two = (n & (n - 1)) == 0;
      EXPECT_EQ(differ == 0,
                nccl_average_is_exact(dtype, n) || (dtype == DType::kF16 && power_of_two))
          << "dtype " << int(dtype) << " n " << n << ": " << differ << " of 2000 differ";
    }
  }
  // fp16: 40000 + 40000 overflows to inf, while ncclAvg's 20000 + 20000 is 40000.
  EXPECT_TRUE(std::isinf(round_to(DType::kF16, 40000.0 + 40000.0)));
  EXPECT_EQ(round_to(DType::kF16, 20000.0 + 20000.0), 40000.0);
  EXPECT_FALSE(nccl_average_is_exact(DType::kF16, 2));
  EXPECT_FALSE(nccl_average_is_exact(DType::kI32, 4));
  EXPECT_FALSE(nccl_average_is_exact(DType::kI64, 2));
}

TEST(NcclBackend, LibraryLoadsWithoutAGpu) {
  // NCCL is loaded with dlopen; loading and asking its version needs no GPU or driver.
  if (!nccl_built()) {
    EXPECT_THROW(nccl_version(), Error);
    return;
  }
  EXPECT_THAT(nccl_version(),
              ::testing::MatchesRegex("NCCL 2\\.[0-9]+\\.[0-9]+ \\(.*libnccl.*\\)"));
}

TEST(NcclBackend, AutoWithoutMpiIsLocal) {
  // Without mpirun there is one process: auto is "local" whatever the device.
  CpuDevice cpu;
  proto::CommConfig config;
  EXPECT_EQ(make_communicator(config, &cpu)->backend(), "local");
}

TEST(NcclBackend, WorldOfOnePassesTheConformanceSuite) {
  std::string reason;
  std::unique_ptr<Device> gpu = first_nccl_gpu(reason);
  if (!gpu) GTEST_SKIP() << reason;
  std::unique_ptr<Communicator> comm = make_communicator(nccl_config(), gpu.get());
  EXPECT_EQ(comm->backend(), "nccl");
  EXPECT_TRUE(comm->device_memory());
  EXPECT_EQ(comm->rank(), 0);
  EXPECT_EQ(comm->size(), 1);
  conformance::StagedCommunicator staged(*comm, *gpu);
  conformance::Report report;
  conformance::SuiteOptions options;
  options.seed = 13;
  conformance::run_suite(staged, report, options);
  EXPECT_GT(report.checks, 1000);
  EXPECT_EQ(report.failed, 0);
  for (const std::string& failure : report.failures) ADD_FAILURE() << failure;
}

TEST(NcclBackend, WorldOfOnePassesTheConformanceSuiteOnHostBuffers) {
  // The suite's host buffers go to the communicator itself: its own staging through device
  // scratch and page-locked memory (the trainer's loss sums and checks take this path).
  std::string reason;
  std::unique_ptr<Device> gpu = first_nccl_gpu(reason);
  if (!gpu) GTEST_SKIP() << reason;
  std::unique_ptr<Communicator> comm = make_communicator(nccl_config(), gpu.get());
  conformance::Report report;
  conformance::SuiteOptions options;
  options.seed = 17;
  conformance::run_suite(*comm, report, options);
  EXPECT_GT(report.checks, 1000);
  EXPECT_EQ(report.failed, 0);
  for (const std::string& failure : report.failures) ADD_FAILURE() << failure;
}

TEST(NcclBackend, AbortedCommunicatorRefusesCollectives) {
  std::string reason;
  std::unique_ptr<Device> gpu = first_nccl_gpu(reason);
  if (!gpu) GTEST_SKIP() << reason;
  std::unique_ptr<Communicator> comm = make_communicator(nccl_config(), gpu.get());
  comm->barrier();
  comm->abort(6);  // no MPI here: ncclCommAbort only
  comm->abort(6);  // twice is allowed
  try {
    comm->barrier();
    ADD_FAILURE() << "barrier after abort() did not throw";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kComm);
    EXPECT_THAT(error.what(), HasSubstr("barrier #2 on rank 0"));
  }
}

}  // namespace
}  // namespace dpt
