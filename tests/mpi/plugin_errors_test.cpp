// How the "plugin" backend (comm/plugin_communicator.h) reports a plug-in's failures, with a
// plug-in that fails on purpose (tests/plugins/failing_plugin.cpp), under mpirun -np 2: init gets
// every rank's bytes in rank order from the bootstrap all-gather; a failed init, an unsupported
// dtype, a timeout and a failed peer each become one dpt::Error naming the plug-in, the call, its
// sequence number and arguments, the status and the plug-in's own message. And the Gloo plug-in's
// abort(): a peer blocked in a collective with the aborted rank fails at once with
// DPT_COLL_ERR_REMOTE (closed connection), not after its 60 s timeout.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <mpi.h>

#include <memory>
#include <string>

#include "comm/communicator.h"
#include "comm/plugin_library.h"
#include "devices/error.h"
#include "expect_error.h"

namespace dpt {
namespace {

using testing::error_of;
using ::testing::HasSubstr;

proto::CommConfig failing_config(double timeout_s) {
  proto::CommConfig config;
  config.set_backend("plugin");
  config.set_plugin_path(DPT_TEST_PLUGIN_FAILING);
  config.set_timeout_s(timeout_s);
  return config;
}

TEST(PluginErrors, FailedInitNamesPluginRankAndReason) {
  EXPECT_THAT(error_of([] { make_communicator(failing_config(13)); }, ErrorKind::kComm),
              HasSubstr("comm.backend \"plugin\" (failing (test), " DPT_TEST_PLUGIN_FAILING
                        "): init on rank"));
  EXPECT_THAT(error_of([] { make_communicator(failing_config(13)); }, ErrorKind::kComm),
              HasSubstr("failed: invalid argument: unlucky timeout"));
}

TEST(PluginErrors, CallsReportStatusAndPluginMessage) {
  std::unique_ptr<Communicator> comm = make_communicator(failing_config(30));
  int size = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  EXPECT_EQ(comm->size(), size);
  EXPECT_EQ(comm->backend(), "plugin:failing");
  float data[3] = {1, 2, 3};
  comm->all_reduce(data, data, 3, DType::kF32, ReduceOp::kSum);  // #1 succeeds
  EXPECT_THAT(error_of([&] { comm->all_reduce(data, data, 3, DType::kBF16, ReduceOp::kMax); },
                       ErrorKind::kComm),
              HasSubstr("plugin failing: all_reduce #2 (count=3, bfloat16, max): unsupported: bf16 "
                        "is not supported by this library"));
  EXPECT_THAT(error_of([&] { comm->barrier(); }, ErrorKind::kComm),
              HasSubstr("plugin failing: barrier #3 timed out after 30 s: waited 1000 ms"));
  EXPECT_THAT(error_of([&] { comm->broadcast(data, 3, DType::kF32, 0); }, ErrorKind::kComm),
              HasSubstr("broadcast #4 (count=3, float32, root 0): peer failed: connection reset"));
}

int mpi_allgather(void*, const void* send, size_t bytes, void* recv) {
  return MPI_Allgather(send, static_cast<int>(bytes), MPI_BYTE, recv, static_cast<int>(bytes),
                       MPI_BYTE, MPI_COMM_WORLD);
}

TEST(GlooAbort, PeerBlockedInACollectiveFailsWithRemoteNotTimeout) {
  if (std::string(DPT_TEST_PLUGIN_GLOO).empty()) GTEST_SKIP() << "the Gloo plug-in is not built";
  PluginLibrary library(DPT_TEST_PLUGIN_GLOO);
  const dpt_coll_plugin_v1_t& table = library.table();
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  dpt_coll_init_args_t args{rank, size, 60.0, mpi_allgather, nullptr};
  dpt_coll_comm_t* comm = nullptr;
  ASSERT_EQ(table.init(&args, &comm), DPT_COLL_OK) << table.last_error(nullptr);
  float value = 1;
  ASSERT_EQ(table.all_reduce(comm, &value, &value, 1, DPT_COLL_F32, DPT_COLL_SUM), DPT_COLL_OK);
  EXPECT_EQ(value, static_cast<float>(size));
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) {
    EXPECT_EQ(table.abort(comm), DPT_COLL_OK);
    EXPECT_EQ(table.all_reduce(comm, &value, &value, 1, DPT_COLL_F32, DPT_COLL_SUM),
              DPT_COLL_ERR_ABORTED);
  } else {
    EXPECT_EQ(table.all_reduce(comm, &value, &value, 1, DPT_COLL_F32, DPT_COLL_SUM),
              DPT_COLL_ERR_REMOTE)
        << table.last_error(comm);
    EXPECT_THAT(table.last_error(comm), HasSubstr("all_reduce: gloo:"));
  }
  table.destroy(comm);
  MPI_Barrier(MPI_COMM_WORLD);
}

}  // namespace
}  // namespace dpt

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided);
  ::testing::InitGoogleTest(&argc, argv);
  const int failed = RUN_ALL_TESTS();
  int any = 0;
  MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return any;
}
