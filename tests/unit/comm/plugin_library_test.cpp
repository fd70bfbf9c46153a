// The collectives plug-in loader (comm/plugin_library.h) and the Gloo plug-in in a world of one,
// without MPI: a missing file, a shared object without the entry point, another ABI major version
// and a short table each give one kConfig error naming comm.plugin_path, the file and the reason;
// the "plugin" backend reports them before it needs MPI. The Gloo plug-in (when built) loads,
// declares ABI 1.x, and in a world of one copies, keeps count 0 and reports bad arguments.
// The bad plug-ins are built from tests/plugins/; their paths come from tests/CMakeLists.txt.
#include "comm/plugin_library.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "devices/error.h"

namespace dpt {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// The kConfig message of loading `path`.
std::string load_error(const std::string& path) {
  try {
    PluginLibrary library(path);
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kConfig);
    return error.what();
  }
  ADD_FAILURE() << "loading " << path << " did not throw";
  return "";
}

TEST(PluginLibrary, MissingFileNamesFieldPathAndReason) {
  EXPECT_THAT(load_error("/nonexistent/libnothing.so"),
              AllOf(HasSubstr("comm.plugin_path"), HasSubstr("/nonexistent/libnothing.so"),
                    HasSubstr("No such file")));
}

TEST(PluginLibrary, EmptyPathIsRequired) {
  EXPECT_THAT(load_error(""), HasSubstr("comm.plugin_path: required"));
}

TEST(PluginLibrary, MissingEntryPointNamesTheSymbol) {
  EXPECT_THAT(load_error(DPT_TEST_PLUGIN_NO_SYMBOL),
              AllOf(HasSubstr("comm.plugin_path"), HasSubstr(DPT_TEST_PLUGIN_NO_SYMBOL),
                    HasSubstr("has no symbol dpt_coll_plugin_v1")));
}

TEST(PluginLibrary, OtherMajorVersionNamesBothVersions) {
  EXPECT_THAT(load_error(DPT_TEST_PLUGIN_WRONG_VERSION),
              AllOf(HasSubstr("version mismatch"), HasSubstr("built for 2.3"),
                    HasSubstr("this dpt speaks 1.0")));
}

TEST(PluginLibrary, ShortTableNamesBothSizes) {
  EXPECT_THAT(load_error(DPT_TEST_PLUGIN_SHORT_TABLE),
              AllOf(HasSubstr("table has 24 bytes"),
                    HasSubstr("needs " + std::to_string(sizeof(dpt_coll_plugin_v1_t)))));
}

TEST(PluginLibrary, BackendReportsLoadErrorsBeforeNeedingMpi) {
  proto::CommConfig config;
  config.set_backend("plugin");
  config.set_plugin_path(DPT_TEST_PLUGIN_WRONG_VERSION);
  try {
    make_communicator(config);
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kConfig);
    EXPECT_THAT(error.what(), HasSubstr("version mismatch"));
  }
}

TEST(PluginLibrary, StatusNames) {
  EXPECT_EQ(plugin_status_name(DPT_COLL_ERR_TIMEOUT), "timed out");
  EXPECT_EQ(plugin_status_name(99), "status 99");
}

// ---- The Gloo plug-in in a world of one (its N-rank behaviour: tests/mpi/) -------------------

const char* gloo_path() { return DPT_TEST_PLUGIN_GLOO; }

int copy_allgather(void*, const void* send, size_t bytes, void* recv) {
  std::memcpy(recv, send, bytes);
  return 0;
}

TEST(GlooPlugin, LoadsAndRunsAWorldOfOne) {
  if (std::strlen(gloo_path()) == 0) GTEST_SKIP() << "the Gloo plug-in is not built (no Gloo)";
  PluginLibrary library(gloo_path());
  const dpt_coll_plugin_v1_t& table = library.table();
  EXPECT_EQ(table.abi_major, DPT_COLL_ABI_VERSION_MAJOR);
  EXPECT_STREQ(table.name, "gloo");
  EXPECT_THAT(library.description(), HasSubstr("Gloo 0."));

  dpt_coll_init_args_t args{0, 1, 5.0, copy_allgather, nullptr};
  dpt_coll_comm_t* comm = nullptr;
  ASSERT_EQ(table.init(&args, &comm), DPT_COLL_OK) << table.last_error(nullptr);
  const std::vector<float> send = {1.5f, -2.0f, 3.25f};
  std::vector<float> recv(3, 0.0f);
  EXPECT_EQ(table.all_reduce(comm, send.data(), recv.data(), 3, DPT_COLL_F32, DPT_COLL_SUM),
            DPT_COLL_OK);
  EXPECT_EQ(recv, send);
  std::vector<float> gathered(3, 0.0f);
  EXPECT_EQ(table.all_gather(comm, send.data(), gathered.data(), 3, DPT_COLL_F32), DPT_COLL_OK);
  EXPECT_EQ(gathered, send);
  EXPECT_EQ(table.reduce_scatter(comm, send.data(), recv.data(), 0, DPT_COLL_F32, DPT_COLL_MAX),
            DPT_COLL_OK);
  EXPECT_EQ(table.broadcast(comm, recv.data(), 3, DPT_COLL_F32, 1), DPT_COLL_ERR_INVALID);
  EXPECT_THAT(table.last_error(comm), HasSubstr("broadcast"));
  EXPECT_EQ(table.barrier(comm), DPT_COLL_OK);
  EXPECT_EQ(table.abort(comm), DPT_COLL_OK);
  EXPECT_EQ(table.barrier(comm), DPT_COLL_ERR_ABORTED);
  EXPECT_EQ(table.abort(comm), DPT_COLL_OK);
  table.destroy(comm);
}

TEST(GlooPlugin, BadInitArgumentsAreRefused) {
  if (std::strlen(gloo_path()) == 0) GTEST_SKIP() << "the Gloo plug-in is not built (no Gloo)";
  PluginLibrary library(gloo_path());
  dpt_coll_init_args_t args{2, 2, 5.0, copy_allgather, nullptr};  // rank out of range
  dpt_coll_comm_t* comm = nullptr;
  EXPECT_EQ(library.table().init(&args, &comm), DPT_COLL_ERR_INVALID);
  EXPECT_EQ(comm, nullptr);
  EXPECT_THAT(library.table().last_error(nullptr), HasSubstr("bad arguments"));
}

}  // namespace
}  // namespace dpt
