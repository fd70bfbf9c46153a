// The "nccl" backend through make_communicator: refused by name without a CUDA device (on every
// machine), and, where a GPU is usable, a world of one in this process (no MPI: no bootstrap)
// through the whole conformance suite with its buffers staged on the GPU
// (tests/staged_communicator.h) and again on host buffers (the backend's own staging), plus
// abort(). Multi-rank runs: backend_conformance_nccl_np*.
// GPU tests skip with the probe's reason where no GPU is usable.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
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
