// TensorBoard event files, written natively: a sequence of TFRecords, each holding one serialized
// dpt::tensorboard::Event (launch/tensorboard.proto). A record is: uint64 length (little-endian),
// masked CRC-32C of those 8 bytes, the data, masked CRC-32C of the data. The reader serves tests,
// tools and keep_events_up_to; TensorBoard itself reads what the writer writes. TensorBoardListener
// (launch/tensorboard_listener.h) is the training-side user.
#pragma once

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "launch/tensorboard.pb.h"

namespace dpt {

// CRC-32C (Castagnoli: reflected polynomial 0x82F63B78, initial and final XOR 0xFFFFFFFF), the
// checksum TFRecord uses. Check value: crc32c("123456789") == 0xE3069283.
uint32_t crc32c(const void* data, std::size_t size);

// TFRecord's masked form of crc32c: ((crc >> 15) | (crc << 17)) + 0xA282EAD8.
uint32_t masked_crc32c(const void* data, std::size_t size);

// The framed bytes of one record holding `data`.
std::string tfrecord(const std::string& data);

// Scalars for one Event: (tag, value) pairs, stored as float as TensorBoard does.
using Scalars = std::vector<std::pair<std::string, double>>;

// Appends events to a new file `<dir>/events.out.tfevents.<unix time>.<hostname>` (".1", ".2",
// ... appended when that name is taken: never overwrites). Every record reaches the OS before a
// write returns, so a crashed run keeps its events. Not thread-safe.
class EventFileWriter {
 public:
  // Creates `dir` when missing, the file, and writes the file_version record "brain.Event:2".
  // Throws kIo naming the directory or file.
  explicit EventFileWriter(const std::string& dir);
  ~EventFileWriter();
  EventFileWriter(const EventFileWriter&) = delete;
  EventFileWriter& operator=(const EventFileWriter&) = delete;

  const std::string& path() const { return path_; }
  // Appends one record holding `event`. Throws kIo naming the file (disk full, ...).
  void write(const tensorboard::Event& event);
  // One Event at `step`, now, with a simple_value per scalar. Nothing is written when empty.
  void write_scalars(int64_t step, const Scalars& scalars);

 private:
  std::string path_;
  int fd_ = -1;
};

// Reads the records of an event file in order, checking both CRCs of each.
class EventFileReader {
 public:
  // Throws kData naming `path` when it cannot be opened.
  explicit EventFileReader(const std::string& path);
  // The next record's data into `data`; false at a clean end of file. Throws kData naming the file
  // and the record's byte offset when a CRC does not match or the file ends inside a record.
  bool next(std::string& data);
  // The next record parsed as an Event; false at the end. Throws kData as above, and when the data
  // is not an Event.
  bool next(tensorboard::Event& event);

 private:
  std::string path_;
  std::ifstream in_;
  uint64_t offset_ = 0;
};

// Every Event of the file at `path`, in order. Throws kData as EventFileReader does.
std::vector<tensorboard::Event> read_events(const std::string& path);

// Rewrites the event files already in `dir` (none, or no `dir`, is fine) keeping the version
// record and the events with step <= `step`; -1 keeps no events. A file's damaged tail (a run
// killed mid-write) is dropped with the rest; a file left with no events is removed, and so are
// temporaries a killed rewrite left. Used when a run starts: a resumed run's points after its
// checkpoint are replaced, a fresh run's old points go, as in metrics.jsonl. Throws kIo naming
// the file it cannot rewrite or remove.
void keep_events_up_to(const std::string& dir, int64_t step);

}  // namespace dpt
