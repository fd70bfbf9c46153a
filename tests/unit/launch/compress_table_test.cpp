// compress_table tests with stand-in models: measure_rows fills each row from its model (file
// sizes, deflated sizes, accuracy) and times the models interleaved, pass by pass; the text table
// and the JSON carry every row; unreadable files are an I/O error.
#include "launch/compress_table.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "devices/error.h"
#include "temp_dir.h"

namespace dpt {
namespace {

class CompressTableTest : public testing::TempDirTest {
 protected:
  CompressTableTest() : TempDirTest("compress_table_test_") {}
  std::string write(const std::string& name, const std::string& bytes) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
};

TEST_F(CompressTableTest, RowsComeFromTheirModelsAndTimingIsInterleaved) {
  // 4000 zero bytes deflate to a few dozen; 4000 pseudo-random bytes do not shrink.
  std::string noise(4000, '\0');
  uint32_t state = 1;
  for (char& c : noise) {
    state = state * 1664525u + 1013904223u;
    c = static_cast<char>(state >> 24);
  }
  std::vector<std::string> calls;  // "model:batch" in call order
  auto model = [&](const std::string& name, const std::string& file, double accuracy) {
    ModelUnderTest m;
    m.method = name;
    m.file = file;
    m.params = 100;
    m.nonzero = name == "zeros" ? 20 : 100;
    m.pruned = name == "zeros" ? "80.0% of weights" : "";
    m.accuracy = [accuracy] { return accuracy; };
    m.forward = [&calls, name](int64_t batch) {
      calls.push_back(name + ":" + std::to_string(batch));
    };
    return m;
  };
  const std::vector<ModelUnderTest> models = {
      model("noise", write("noise.bin", noise), 0.9),
      model("zeros", write("zeros.bin", std::string(4000, '\0')), 0.85)};
  InferenceBenchOptions options;
  options.warmup = 0;
  options.latency_repeats = 1;
  options.throughput_batch = 8;
  options.throughput_repeats = 1;
  const std::vector<CompressRow> rows = measure_rows(models, options, 2);
  EXPECT_EQ(calls, (std::vector<std::string>{"noise:1", "noise:8", "zeros:1", "zeros:8", "noise:1",
                                             "noise:8", "zeros:1", "zeros:8"}));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].method, "noise");
  EXPECT_EQ(rows[0].file_bytes, 4000);
  EXPECT_GT(rows[0].gzip_bytes, 3900);
  EXPECT_EQ(rows[1].file_bytes, 4000);
  EXPECT_LT(rows[1].gzip_bytes, 100);
  EXPECT_DOUBLE_EQ(rows[1].accuracy, 0.85);
  EXPECT_EQ(rows[1].nonzero, 20);
  EXPECT_EQ(rows[1].timing.throughput_batch, 8);

  const std::string table = format_table(rows, 500);
  EXPECT_NE(table.find("samples/s@8"), std::string::npos) << table;
  EXPECT_NE(table.find("zeros     0.8500          100           20   80.0% of weights"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("over 500 test samples"), std::string::npos) << table;
  const nlohmann::json json = rows_json(rows, 500);
  EXPECT_EQ(json["eval_samples"], 500);
  ASSERT_EQ(json["rows"].size(), 2u);
  EXPECT_EQ(json["rows"][1]["method"], "zeros");
  EXPECT_EQ(json["rows"][1]["file_bytes"], 4000);
  EXPECT_EQ(json["rows"][1]["gzip_bytes"], rows[1].gzip_bytes);
}

TEST_F(CompressTableTest, UnreadableFileIsAnIoError) {
  try {
    deflated_size(dir_ + "/absent.h5");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    EXPECT_NE(std::string(e.what()).find("absent.h5: cannot read"), std::string::npos);
  }
}

}  // namespace
}  // namespace dpt
