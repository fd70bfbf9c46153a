// The per-rank timeline (config trace { enabled: true }): every span goes to
// RUN_DIR/trace/rank_<r>.json in Chrome's trace event format (JSON array of complete "X" events,
// timestamps in microseconds since a barrier all ranks left together, pid = rank, tid = thread),
// one event per line. After every event the file is flushed as a complete, strict JSON array
// (each event overwrites the previous closing bracket), so a run that dies keeps a valid
// timeline up to its last event; only a crash inside a write tears the last line. `dpt trace
// merge RUN_DIR` joins the ranks into one file that chrome://tracing and Perfetto open, ranks as
// processes.
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/trace.h"

namespace dpt {

class TraceWriter : public Tracer {
 public:
  // Creates `dir` and the rank's file; `origin` is time zero (taken after a barrier). Throws kIo.
  TraceWriter(const std::string& dir, int rank, Clock::time_point origin);
  void span(const char* category, const std::string& name, Clock::time_point begin,
            Clock::time_point end) override;
  // Stops writing after the current event (at trace.max_steps); spans are then dropped.
  void stop();
  const std::string& path() const { return path_; }

 private:
  int thread_index();  // 0 for the first thread seen (the trainer), then 1, 2, ... (holds mutex_)
  // Appends `line` as the array's last element and closes the array again, then flushes.
  void write(const std::string& line);

  std::mutex mutex_;
  std::string path_;
  std::ofstream out_;
  int rank_;
  Clock::time_point origin_;
  std::map<std::thread::id, int> threads_;
  bool stopped_ = false;
  bool empty_ = true;  // no event written yet (nothing to separate from, no bracket to replace)
};

// Reads every RUN_DIR/trace/rank_<r>.json (a missing closing bracket or a torn last line, as a
// crash inside a write or an older dpt leaves, is tolerated), orders each thread's events by time,
// and writes one Chrome trace to `out`. Returns the number of events. Throws kData naming a file
// that does not parse.
int64_t merge_traces(const std::string& run_dir, const std::string& out);

}  // namespace dpt
