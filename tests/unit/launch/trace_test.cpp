// The per-rank timeline: spans from several threads land in the rank's file as Chrome trace
// events; merging ranks (one of them torn by a crash) gives valid JSON with every thread's events
// in time order; garbage in the middle of a file is refused naming it.
#include "launch/trace_writer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "devices/error.h"
#include "temp_dir.h"

namespace dpt {
namespace {

namespace fs = std::filesystem;
using Clock = Tracer::Clock;

class TraceTest : public testing::TempDirTest {
 protected:
  TraceTest() : TempDirTest("dpt_trace_test_") {}
};

TEST_F(TraceTest, RanksMergeIntoOneOrderedTimeline) {
  const Clock::time_point origin = Clock::now();
  for (int rank = 0; rank < 2; ++rank) {
    TraceWriter writer(dir_ + "/trace", rank, origin);
    // Written out of order on purpose; a second thread records too.
    writer.span("step", "step 1", origin + std::chrono::milliseconds(50),
                origin + std::chrono::milliseconds(60));
    writer.span("step", "step 0", origin + std::chrono::milliseconds(10),
                origin + std::chrono::milliseconds(40));
    std::thread([&] {
      writer.span("all_reduce", "bucket 0", origin + std::chrono::milliseconds(20),
                  origin + std::chrono::milliseconds(30));
    }).join();
    writer.stop();
    writer.span("step", "dropped", origin, origin);
  }
  // Rank 1 "crashed" mid-line: no closing bracket, a torn last event.
  {
    std::ofstream torn(dir_ + "/trace/rank_1.json", std::ios::app);
    torn << "{\"ph\":\"X\",\"name\":\"step 2\",\"ts\":7";
  }
  const std::string out = dir_ + "/merged.json";
  EXPECT_EQ(merge_traces(dir_, out), 6);
  std::ifstream in(out);
  const nlohmann::json merged = nlohmann::json::parse(in);  // throws when not valid JSON
  std::map<std::pair<int, int>, int64_t> last;
  int spans = 0, names = 0;
  for (const nlohmann::json& event : merged["traceEvents"]) {
    if (event["ph"] == "M") {
      names += event["name"] == "thread_name" ? 1 : 0;
      continue;
    }
    ++spans;
    EXPECT_NE(event["name"], "dropped");
    const auto key = std::make_pair(event["pid"].get<int>(), event["tid"].get<int>());
    const int64_t ts = event["ts"].get<int64_t>();
    EXPECT_GE(ts, last[key]) << event.dump();
    last[key] = ts;
    if (event["name"] == "bucket 0") {
      EXPECT_EQ(event["tid"], 1);
    }
    if (event["name"] == "step 0") {
      EXPECT_EQ(ts, 10000);
      EXPECT_EQ(event["dur"], 30000);
    }
  }
  EXPECT_EQ(spans, 6);
  EXPECT_EQ(names, 4);  // trainer and communication threads of two ranks
}

TEST_F(TraceTest, GarbageInsideAFileIsRefusedNamingIt) {
  fs::create_directories(dir_ + "/trace");
  std::ofstream(dir_ + "/trace/rank_0.json") << "[\n{\"ph\":\"X\"},\nnot json,\n{\"ph\":\"X\"},\n";
  try {
    merge_traces(dir_, dir_ + "/m.json");
    FAIL() << "merged garbage";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kData);
    EXPECT_NE(std::string(e.what()).find("rank_0.json:3"), std::string::npos) << e.what();
  }
  try {
    merge_traces(dir_ + "/none", dir_ + "/m.json");
    FAIL() << "merged nothing";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("trace { enabled: true }"), std::string::npos);
  }
}

}  // namespace
}  // namespace dpt
