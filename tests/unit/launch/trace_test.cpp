// The per-rank timeline: spans from several threads land in the rank's file as Chrome trace
// events; the rank file is strict JSON after every event; merging ranks (one of them torn by a
// crash) gives valid JSON with every thread's events in time order; garbage in the middle of a
// file is refused naming it.
#include "launch/trace_writer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
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
  // Rank 1 crashed inside a write: the closing bracket overwritten, a torn last event.
  {
    const std::string rank1 = dir_ + "/trace/rank_1.json";
    fs::resize_file(rank1, fs::file_size(rank1) - 3);  // "\n]\n"
    std::ofstream torn(rank1, std::ios::app);
    torn << ",\n{\"ph\":\"X\",\"name\":\"step 2\",\"ts\":7";
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

// Strict parsers (nlohmann, Python's json) reject a comma before "]" and a missing "]": the rank
// file is a complete array after every event, so a run cut short leaves valid JSON too.
TEST_F(TraceTest, TheRankFileIsStrictJsonAfterEveryEvent) {
  const Clock::time_point origin = Clock::now();
  const std::string path = dir_ + "/trace/rank_3.json";
  auto events = [&] {
    std::ifstream in(path);
    const nlohmann::json parsed = nlohmann::json::parse(in);  // throws when not strict JSON
    EXPECT_TRUE(parsed.is_array());
    return parsed;
  };
  {
    TraceWriter writer(dir_ + "/trace", 3, origin);
    EXPECT_EQ(events().size(), 2u);  // process name and sort index
    for (int i = 0; i < 3; ++i) {
      writer.span("step", "step " + std::to_string(i), origin, origin);
      const nlohmann::json parsed = events();  // as a run killed now would leave it
      ASSERT_EQ(parsed.size(), static_cast<std::size_t>(4 + i));  // + thread name + i + 1 spans
      EXPECT_EQ(parsed.back()["name"], "step " + std::to_string(i));
      EXPECT_EQ(parsed.back()["pid"], 3);
    }
  }
  EXPECT_EQ(events().size(), 6u);  // the writer's end adds nothing
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.find(",\n]"), std::string::npos) << text;
  ASSERT_GE(text.size(), 4u);
  EXPECT_EQ(text.substr(text.size() - 4), "}\n]\n") << text;
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
