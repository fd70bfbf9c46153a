// The pieces of `dpt bench report` that can be checked without timing: the table renders the same
// rows as text, CSV and JSON (n/a rows carry their reason, never a number), and the all-reduce
// probe checks its results and reports the sizes asked for on every rank.
#include <gtest/gtest.h>

#include <thread>

#include "comm/thread_world.h"
#include "devices/error.h"
#include "forwarding_communicator.h"
#include "launch/comm_probe.h"
#include "launch/report_table.h"

namespace dpt {
namespace {

TEST(ReportTable, RendersValuesAndNotApplicableRowsAlike) {
  ReportTable table;
  table.add("compute", "FMA peak", 183.25, "GFLOP/s", "avx512f, 2 threads");
  table.add_na("power", "CPU package energy", "no /sys/class/powercap");
  table.add("compute", "GEMM, model shapes", 87.5, "%", "of FMA peak, \"measured\", same run");

  const std::string text = table.text();
  EXPECT_EQ(text.find("compute\n"), 0u) << text;
  EXPECT_LT(text.find("GEMM, model shapes"), text.find("\npower\n")) << "sections stay grouped";
  EXPECT_NE(text.find("183.2 GFLOP/s"), std::string::npos) << text;
  EXPECT_NE(text.find("n/a  no /sys/class/powercap"), std::string::npos) << text;

  EXPECT_EQ(table.csv(),
            "section,metric,value,unit,note\n"
            "compute,FMA peak,183.25,GFLOP/s,\"avx512f, 2 threads\"\n"
            "power,CPU package energy,,,no /sys/class/powercap\n"
            "compute,\"GEMM, model shapes\",87.5,%,\"of FMA peak, \"\"measured\"\", same run\"\n");

  const nlohmann::json json = table.json();
  ASSERT_EQ(json.size(), 3u);
  EXPECT_EQ(json[0]["value"].get<double>(), 183.25);
  EXPECT_TRUE(json[1]["value"].is_null());
  EXPECT_EQ(json[1]["note"], "no /sys/class/powercap");
}

TEST(ReportTable, FormatsAboutFourSignificantDigits) {
  EXPECT_EQ(format_value(16736.4), "16736");
  EXPECT_EQ(format_value(183.25), "183.2");
  EXPECT_EQ(format_value(87.46), "87.5");
  EXPECT_EQ(format_value(0.012345), "0.0123");
  EXPECT_EQ(format_value(3.0), "3");
}

// Communicator that corrupts one element of every all-reduce on one rank.
class CorruptingCommunicator : public testing::ForwardingCommunicator {
 public:
  using ForwardingCommunicator::ForwardingCommunicator;
  void all_reduce(const void* send, void* recv, std::size_t count, DType dtype,
                  ReduceOp op) override {
    ForwardingCommunicator::all_reduce(send, recv, count, dtype, op);
    if (dtype == DType::kF32 && rank() == 1 && count > 3) static_cast<float*>(recv)[3] += 1.0f;
  }
};

// Runs measure_all_reduce on every rank of a 3-rank thread world; returns each rank's rows, or
// the error kinds in `errors`.
std::vector<std::vector<AllReduceTiming>> probe(bool corrupt, std::vector<int>& errors) {
  CommOptions options;
  options.timeout_s = 30;
  ThreadWorld world(3, options);
  std::vector<std::vector<AllReduceTiming>> rows(3);
  errors.assign(3, -1);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < 3; ++rank) {
    threads.emplace_back([&, rank] {
      std::unique_ptr<Communicator> comm = world.communicator(rank);
      if (corrupt) comm = std::make_unique<CorruptingCommunicator>(std::move(comm));
      try {
        rows[rank] = measure_all_reduce(*comm, 64, 1024, 0.01);
      } catch (const Error& e) {
        errors[rank] = static_cast<int>(e.kind());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  return rows;
}

TEST(CommProbe, MeasuresEverySizeOnEveryRank) {
  std::vector<int> errors;
  const auto rows = probe(false, errors);
  for (int rank = 0; rank < 3; ++rank) {
    EXPECT_EQ(errors[rank], -1);
    ASSERT_EQ(rows[rank].size(), 5u) << "64, 128, 256, 512 and 1024 bytes";
    EXPECT_EQ(rows[rank][0].bytes, 64u);
    EXPECT_EQ(rows[rank][4].bytes, 1024u);
    for (const AllReduceTiming& row : rows[rank]) {
      EXPECT_GE(row.calls, 5);
      EXPECT_GT(row.time_us, 0.0);
      EXPECT_DOUBLE_EQ(row.busbw_gbs, row.algbw_gbs * 4.0 / 3.0);
      // The slowest rank's median is the same number everywhere.
      EXPECT_EQ(row.time_us, rows[0][&row - rows[rank].data()].time_us);
    }
  }
}

TEST(CommProbe, WrongSumsOnOneRankFailEveryRank) {
  std::vector<int> errors;
  probe(true, errors);
  for (int rank = 0; rank < 3; ++rank) {
    EXPECT_EQ(errors[rank], static_cast<int>(ErrorKind::kComm)) << "rank " << rank;
  }
}

}  // namespace
}  // namespace dpt
