// Event files: CRC-32C against published vectors (the check value and RFC 3720's), TFRecord
// framing byte by byte, write -> read round trips with exact values, corruption and truncation
// refused naming the offset, trimming earlier files on resume, and the tags and steps
// TensorBoardListener writes.
#include "launch/event_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>

#include "devices/error.h"
#include "launch/tensorboard_listener.h"

namespace dpt {
namespace {

namespace fs = std::filesystem;

uint32_t crc_of(const std::string& s) { return crc32c(s.data(), s.size()); }

TEST(Crc32c, CheckValueAndKnownVectors) {
  EXPECT_EQ(crc_of("123456789"), 0xE3069283u);
  EXPECT_EQ(crc_of(""), 0u);
  // RFC 3720 appendix B.4.
  EXPECT_EQ(crc_of(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(crc_of(std::string(32, '\xFF')), 0x62A8AB43u);
  std::string ascending(32, '\0'), descending(32, '\0');
  std::iota(ascending.begin(), ascending.end(), '\0');
  for (int i = 0; i < 32; ++i) descending[i] = static_cast<char>(31 - i);
  EXPECT_EQ(crc_of(ascending), 0x46DD794Eu);
  EXPECT_EQ(crc_of(descending), 0x113FDB5Cu);
}

TEST(Crc32c, MaskedMatchesTensorBoard) {
  // Values from tensorboard.compat.tensorflow_stub.pywrap_tensorflow.masked_crc32c.
  EXPECT_EQ(masked_crc32c("123456789", 9), 0xC78AB0E5u);
  EXPECT_EQ(masked_crc32c("abc", 3), 0x21F1576Eu);
}

TEST(TfRecord, FramingIsLengthCrcDataCrc) {
  const std::string record = tfrecord("abc");
  const std::string expected(
      "\x03\0\0\0\0\0\0\0"  // length 3, little-endian
      "\xB0\x99\x49\x0E"    // masked crc32c of the length: 0x0E4999B0
      "abc"
      "\x6E\x57\xF1\x21",  // masked crc32c of "abc": 0x21F1576E
      19);
  EXPECT_EQ(record, expected);
}

class EventFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string bytes_of(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  void overwrite(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  }
  // The kData message reading `path` gives, or "" when it reads cleanly.
  std::string read_error(const std::string& path) {
    try {
      read_events(path);
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kData);
      return e.what();
    }
    return "";
  }
  // Where the second record starts: after the first's 8 + 4 + length + 4 bytes.
  static std::size_t second_record_offset(const std::string& bytes) {
    std::size_t length = 0;
    for (int i = 7; i >= 0; --i) length = length * 256 + static_cast<unsigned char>(bytes[i]);
    return 16 + length;
  }
  // A file with the version record and one scalar event; returns its path.
  std::string write_small_file() {
    EventFileWriter writer(dir_);
    writer.write_scalars(7, {{"a", 1.5}});
    return writer.path();
  }

  const std::string dir_ = "event_file_test_" + std::to_string(getpid());
};

TEST_F(EventFileTest, NameVersionAndRoundTrip) {
  std::string path;
  {
    EventFileWriter writer(dir_ + "/sub");  // created when missing
    path = writer.path();
    writer.write_scalars(3, {{"train/loss", 0.25}, {"train/lr", 1e-3}});
    writer.write_scalars(4, {});  // nothing written
    writer.write_scalars(-1, {{"neg", -2.5}});
  }
  const std::string name = fs::path(path).filename().string();
  EXPECT_EQ(name.rfind("events.out.tfevents.", 0), 0u) << name;
  EXPECT_EQ(fs::path(path).parent_path(), fs::path(dir_ + "/sub"));

  const std::vector<tensorboard::Event> events = read_events(path);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].file_version(), "brain.Event:2");
  EXPECT_GT(events[0].wall_time(), 1.6e9);
  EXPECT_EQ(events[1].step(), 3);
  ASSERT_EQ(events[1].summary().value_size(), 2);
  EXPECT_EQ(events[1].summary().value(0).tag(), "train/loss");
  EXPECT_EQ(events[1].summary().value(0).simple_value(), 0.25f);
  EXPECT_EQ(events[1].summary().value(1).tag(), "train/lr");
  EXPECT_EQ(events[1].summary().value(1).simple_value(), 1e-3f);
  EXPECT_GE(events[1].wall_time(), events[0].wall_time());
  EXPECT_EQ(events[2].step(), -1);
  EXPECT_EQ(events[2].summary().value(0).simple_value(), -2.5f);
}

TEST_F(EventFileTest, SecondWriterNeverOverwrites) {
  EventFileWriter first(dir_), second(dir_);
  EXPECT_NE(first.path(), second.path());
  first.write_scalars(1, {{"x", 1}});
  EXPECT_EQ(read_events(first.path()).size(), 2u);
  EXPECT_EQ(read_events(second.path()).size(), 1u);
}

TEST_F(EventFileTest, FlippedDataByteIsNamedWithItsOffset) {
  const std::string path = write_small_file();
  std::string bytes = bytes_of(path);
  const std::size_t second = second_record_offset(bytes);
  bytes[second + 14] ^= 0x01;  // inside the second record's data
  overwrite(path, bytes);
  const std::string message = read_error(path);
  EXPECT_NE(message.find("data CRC mismatch"), std::string::npos) << message;
  EXPECT_NE(message.find("offset " + std::to_string(second)), std::string::npos) << message;
  EXPECT_NE(message.find(path), std::string::npos) << message;
}

TEST_F(EventFileTest, FlippedLengthByteIsDetected) {
  const std::string path = write_small_file();
  std::string bytes = bytes_of(path);
  bytes[1] ^= 0x40;  // first record's length: would claim 16 KiB more
  overwrite(path, bytes);
  const std::string message = read_error(path);
  EXPECT_NE(message.find("length CRC mismatch"), std::string::npos) << message;
  EXPECT_NE(message.find("offset 0"), std::string::npos) << message;
}

TEST_F(EventFileTest, FlippedCrcByteIsDetected) {
  const std::string path = write_small_file();
  std::string bytes = bytes_of(path);
  bytes[bytes.size() - 1] ^= 0x80;  // last record's data CRC
  overwrite(path, bytes);
  EXPECT_NE(read_error(path).find("data CRC mismatch"), std::string::npos);
}

TEST_F(EventFileTest, TruncationAnywhereIsDetected) {
  const std::string path = write_small_file();
  const std::string bytes = bytes_of(path);
  ASSERT_EQ(read_error(path), "");
  const std::size_t second = second_record_offset(bytes);
  // Cutting exactly between records leaves a valid shorter file; any other cut is an error.
  for (std::size_t size = 1; size < bytes.size(); ++size) {
    overwrite(path, bytes.substr(0, size));
    const std::string message = read_error(path);
    if (size == second) {
      EXPECT_EQ(message, "") << size;
    } else {
      EXPECT_NE(message.find("truncated"), std::string::npos) << size << ": " << message;
    }
  }
}

TEST_F(EventFileTest, UnwritableDirectoryIsAnIoError) {
  overwrite(dir_ + "/file", "x");
  try {
    EventFileWriter writer(dir_ + "/file/sub");
    FAIL() << "expected kIo";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kIo);
    EXPECT_NE(std::string(e.what()).find(dir_ + "/file/sub"), std::string::npos) << e.what();
  }
}

TEST_F(EventFileTest, MissingFileIsADataError) {
  EXPECT_NE(read_error(dir_ + "/absent").find("cannot open"), std::string::npos);
}

// Steps of the scalar events in `path`.
std::vector<int64_t> steps_in(const std::string& path) {
  std::vector<int64_t> steps;
  for (const tensorboard::Event& e : read_events(path)) {
    if (e.has_summary()) steps.push_back(e.step());
  }
  return steps;
}

TEST_F(EventFileTest, KeepEventsUpToTrimsEarlierFiles) {
  std::string first, second;
  {
    EventFileWriter a(dir_), b(dir_);
    first = a.path();
    second = b.path();
    for (int64_t step : {10, 20, 30}) a.write_scalars(step, {{"x", 1.0}});
    b.write_scalars(40, {{"x", 2.0}});
  }
  overwrite(dir_ + "/notes.txt", "kept");
  overwrite(first + ".tmp.123", "left by a killed rewrite");
  keep_events_up_to(dir_, 20);
  EXPECT_EQ(steps_in(first), (std::vector<int64_t>{10, 20}));
  EXPECT_EQ(read_events(first)[0].file_version(), "brain.Event:2");
  EXPECT_FALSE(fs::exists(second));  // nothing left in it
  EXPECT_FALSE(fs::exists(first + ".tmp.123"));
  EXPECT_EQ(bytes_of(dir_ + "/notes.txt"), "kept");
  keep_events_up_to(dir_, -1);  // a fresh run
  EXPECT_FALSE(fs::exists(first));
  EXPECT_TRUE(fs::exists(dir_ + "/notes.txt"));
  keep_events_up_to(dir_ + "/absent", 5);  // no directory: nothing to do
}

TEST_F(EventFileTest, KeepEventsUpToDropsADamagedTail) {
  std::string path;
  {
    EventFileWriter writer(dir_);
    path = writer.path();
    for (int64_t step : {1, 2, 3}) writer.write_scalars(step, {{"x", 1.0}});
  }
  const std::string bytes = bytes_of(path);
  overwrite(path, bytes.substr(0, bytes.size() - 3));  // the last record cut short
  keep_events_up_to(dir_, 100);
  EXPECT_EQ(steps_in(path), (std::vector<int64_t>{1, 2}));
}

TEST_F(EventFileTest, ListenerWritesTagsAndSteps) {
  std::string path;
  {
    {
      TensorBoardListener earlier(dir_);
      TrainProgress progress;
      for (int64_t step : {10, 20, 30}) {
        progress.step = step;
        earlier.on_log(progress);
      }
    }
    TensorBoardListener listener(dir_, 20);  // resumed at 20
    path = listener.path();
    TrainProgress progress;
    progress.step = 30;
    progress.loss = 0.5;
    progress.lr = 0.25;
    progress.grad_norm = 2.0;
    progress.samples_per_s = 1024.0;
    progress.time_ms = {1.0, 2.0, 3.0, 4.0, 5.0, 6.0};
    listener.on_log(progress);
    EvalResult eval;
    eval.step = 30;
    eval.loss = 0.75;
    eval.accuracy = 0.875;
    listener.on_eval(eval);
    listener.scalars(31, {{"time/forward_s", 0.125}});
    listener.on_step(progress);  // writes nothing
  }
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(dir_)) files.push_back(entry.path().string());
  ASSERT_EQ(files.size(), 2u);
  const std::string earlier = files[0] == path ? files[1] : files[0];
  EXPECT_EQ(steps_in(earlier), (std::vector<int64_t>{10, 20}));

  const std::vector<tensorboard::Event> events = read_events(path);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].file_version(), "brain.Event:2");
  auto pairs = [](const tensorboard::Event& e) {
    std::vector<std::pair<std::string, float>> out;
    for (const auto& v : e.summary().value()) out.emplace_back(v.tag(), v.simple_value());
    return out;
  };
  using P = std::vector<std::pair<std::string, float>>;
  EXPECT_EQ(events[1].step(), 30);
  EXPECT_EQ(pairs(events[1]), (P{{"train/loss", 0.5f},
                                 {"train/lr", 0.25f},
                                 {"train/grad_norm", 2.0f},
                                 {"train/samples_per_s", 1024.0f},
                                 {"time_ms/data", 1.0f},
                                 {"time_ms/forward", 2.0f},
                                 {"time_ms/backward", 3.0f},
                                 {"time_ms/sync", 4.0f},
                                 {"time_ms/norm", 5.0f},
                                 {"time_ms/optimizer", 6.0f}}));
  EXPECT_EQ(events[2].step(), 30);
  EXPECT_EQ(pairs(events[2]), (P{{"eval/loss", 0.75f}, {"eval/accuracy", 0.875f}}));
  EXPECT_EQ(events[3].step(), 31);
  EXPECT_EQ(pairs(events[3]), (P{{"time/forward_s", 0.125f}}));
}

}  // namespace
}  // namespace dpt
