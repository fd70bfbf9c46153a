// EventFileWriter, EventFileReader and keep_events_up_to: TFRecord framing with a table-driven
// CRC-32C, POSIX writes checked one by one, and a reader that trusts no length before its CRC.
#include "launch/event_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <system_error>

#include "core/atomic_file.h"
#include "devices/error.h"

namespace dpt {

namespace {

// crc32c's byte table for the reflected Castagnoli polynomial.
constexpr std::array<uint32_t, 256> make_crc32c_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) ? 0x82F63B78u : 0u);
    table[i] = crc;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrc32cTable = make_crc32c_table();

void put_u64(char* out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((value >> (8 * i)) & 0xFF);
}
void put_u32(char* out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((value >> (8 * i)) & 0xFF);
}
uint64_t get_u64(const char* in) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i)
    value |= static_cast<uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  return value;
}
uint32_t get_u32(const char* in) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i)
    value |= static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  return value;
}

double unix_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

// Opens a new file named `base`, or `base.N` for the first N that is free.
int create_new_file(const std::string& base, std::string& path) {
  for (int n = 0; n < 1000; ++n) {
    path = n == 0 ? base : base + "." + std::to_string(n);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) return fd;
    DPT_CHECK_AS(ErrorKind::kIo, errno == EEXIST)
        << path << ": cannot create event file: " << std::strerror(errno);
  }
  DPT_THROW(ErrorKind::kIo) << base << ": cannot create event file: 1000 names taken";
}

}  // namespace

uint32_t crc32c(const void* data, std::size_t size) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  uint32_t crc = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < size; ++i) crc = kCrc32cTable[(crc ^ bytes[i]) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(const void* data, std::size_t size) {
  const uint32_t crc = crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xA282EAD8u;
}

std::string tfrecord(const std::string& data) {
  std::string record(8 + 4 + data.size() + 4, '\0');
  put_u64(&record[0], data.size());
  put_u32(&record[8], masked_crc32c(&record[0], 8));
  std::memcpy(&record[12], data.data(), data.size());
  put_u32(&record[12 + data.size()], masked_crc32c(data.data(), data.size()));
  return record;
}

EventFileWriter::EventFileWriter(const std::string& dir) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  DPT_CHECK_AS(ErrorKind::kIo, !error) << dir << ": cannot create directory: " << error.message();
  const std::string base =
      dir + "/events.out.tfevents." + std::to_string(std::time(nullptr)) + "." + host_name();
  fd_ = create_new_file(base, path_);
  tensorboard::Event event;
  event.set_wall_time(unix_seconds());
  event.set_file_version("brain.Event:2");
  write(event);
}

EventFileWriter::~EventFileWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void EventFileWriter::write(const tensorboard::Event& event) {
  std::string data;
  DPT_CHECK(event.SerializeToString(&data)) << path_ << ": cannot serialize an event";
  // One write() per record, so a record is either all there or cut short at the end of the file.
  const std::string record = tfrecord(data);
  std::size_t done = 0;
  while (done < record.size()) {
    const ssize_t n = ::write(fd_, record.data() + done, record.size() - done);
    if (n < 0 && errno == EINTR) continue;
    DPT_CHECK_AS(ErrorKind::kIo, n > 0) << path_ << ": write failed: " << std::strerror(errno);
    done += static_cast<std::size_t>(n);
  }
}

void EventFileWriter::write_scalars(int64_t step, const Scalars& scalars) {
  if (scalars.empty()) return;
  tensorboard::Event event;
  event.set_wall_time(unix_seconds());
  event.set_step(step);
  for (const auto& [tag, value] : scalars) {
    tensorboard::Summary::Value* entry = event.mutable_summary()->add_value();
    entry->set_tag(tag);
    entry->set_simple_value(static_cast<float>(value));
  }
  write(event);
}

EventFileReader::EventFileReader(const std::string& path)
    : path_(path), in_(path, std::ios::binary) {
  DPT_CHECK_AS(ErrorKind::kData, in_.is_open())
      << path << ": cannot open event file: " << std::strerror(errno);
}

bool EventFileReader::next(std::string& data) {
  char header[12];
  in_.read(header, sizeof(header));
  const std::streamsize got = in_.gcount();
  if (got == 0 && in_.eof()) return false;
  DPT_CHECK_AS(ErrorKind::kData, got == sizeof(header))
      << path_ << ": truncated record header at offset " << offset_;
  const uint64_t length = get_u64(header);
  DPT_CHECK_AS(ErrorKind::kData, get_u32(header + 8) == masked_crc32c(header, 8))
      << path_ << ": length CRC mismatch in the record at offset " << offset_;
  // The length is now trusted; still, never allocate past what the file holds.
  const std::streampos here = in_.tellg();
  in_.seekg(0, std::ios::end);
  const uint64_t left = static_cast<uint64_t>(in_.tellg() - here);
  in_.seekg(here);
  DPT_CHECK_AS(ErrorKind::kData, length <= left && left - length >= 4)
      << path_ << ": truncated record at offset " << offset_ << " (" << length
      << " data bytes declared, " << left << " bytes left)";
  data.resize(length);
  char footer[4];
  in_.read(data.data(), static_cast<std::streamsize>(length));
  in_.read(footer, sizeof(footer));
  DPT_CHECK_AS(ErrorKind::kData, in_.good())
      << path_ << ": read failed in the record at offset " << offset_;
  DPT_CHECK_AS(ErrorKind::kData, get_u32(footer) == masked_crc32c(data.data(), data.size()))
      << path_ << ": data CRC mismatch in the record at offset " << offset_;
  offset_ += sizeof(header) + length + sizeof(footer);
  return true;
}

bool EventFileReader::next(tensorboard::Event& event) {
  const uint64_t offset = offset_;
  std::string data;
  if (!next(data)) return false;
  DPT_CHECK_AS(ErrorKind::kData, event.ParseFromString(data))
      << path_ << ": the record at offset " << offset << " is not an Event";
  return true;
}

std::vector<tensorboard::Event> read_events(const std::string& path) {
  EventFileReader reader(path);
  std::vector<tensorboard::Event> events;
  tensorboard::Event event;
  while (reader.next(event)) events.push_back(event);
  return events;
}

namespace {

// The framed records of `path` to keep: the version record and events with step <= `step`,
// stopping at the first damaged record.
std::string kept_records(const std::string& path, int64_t step, bool& any_event) {
  std::string kept, data;
  any_event = false;
  try {
    EventFileReader reader(path);
    while (reader.next(data)) {
      tensorboard::Event event;
      if (!event.ParseFromString(data)) break;
      const bool version = event.what_case() == tensorboard::Event::kFileVersion;
      if (!version && event.step() > step) continue;
      any_event = any_event || !version;
      kept += tfrecord(data);
    }
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kData) throw;
  }
  return kept;
}

}  // namespace

void keep_events_up_to(const std::string& dir, int64_t step) {
  namespace fs = std::filesystem;
  std::error_code error;
  if (!fs::is_directory(dir, error)) return;
  std::vector<std::string> paths;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && name.rfind("events.out.tfevents.", 0) == 0) {
      paths.push_back(entry.path().string());
    }
  }
  DPT_CHECK_AS(ErrorKind::kIo, !error) << dir << ": cannot list: " << error.message();
  for (const std::string& path : paths) {
    bool any_event = false;
    const std::string kept = path.find(".tmp.") == std::string::npos
                                 ? kept_records(path, step, any_event)
                                 : std::string();
    if (any_event) {
      write_file_atomically(path, kept.data(), kept.size());
    } else {
      DPT_CHECK_AS(ErrorKind::kIo, fs::remove(path, error))
          << path << ": cannot remove: " << error.message();
    }
  }
}

}  // namespace dpt
