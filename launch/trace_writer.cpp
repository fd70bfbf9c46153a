// TraceWriter and merge_traces (launch/trace_writer.h).
#include "launch/trace_writer.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "devices/error.h"

namespace dpt {
namespace {

namespace fs = std::filesystem;

// What follows the last event: the file is a closed array after every write.
constexpr char kClose[] = "\n]\n";
constexpr std::streamoff kCloseBytes = sizeof(kClose) - 1;

int64_t micros(Tracer::Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

std::string metadata(const char* what, int pid, int tid, const nlohmann::json& args) {
  nlohmann::json event = {{"ph", "M"}, {"name", what}, {"pid", pid}, {"tid", tid}, {"args", args}};
  return event.dump();
}

// The events of one rank file: one JSON object per line between "[" and an optional "]".
std::vector<nlohmann::json> read_events(const std::string& path) {
  std::ifstream in(path);
  DPT_CHECK_AS(ErrorKind::kData, in.good()) << path << ": cannot open: " << std::strerror(errno);
  std::vector<nlohmann::json> events;
  std::string line;
  int64_t number = 0;
  bool torn = false;
  while (std::getline(in, line)) {
    ++number;
    while (!line.empty() && (line.back() == ',' || line.back() == '\r')) line.pop_back();
    if (line.empty() || line == "[" || line == "]") continue;
    DPT_CHECK_AS(ErrorKind::kData, !torn)
        << path << ":" << number - 1 << ": not a trace event (only the last line may be torn)";
    nlohmann::json event = nlohmann::json::parse(line, nullptr, false);
    if (event.is_discarded() || !event.is_object()) {
      torn = true;  // a crash mid-write; fine if nothing follows
      continue;
    }
    events.push_back(std::move(event));
  }
  return events;
}

}  // namespace

TraceWriter::TraceWriter(const std::string& dir, int rank, Clock::time_point origin)
    : rank_(rank), origin_(origin) {
  std::error_code error;
  fs::create_directories(dir, error);
  DPT_CHECK_AS(ErrorKind::kIo, !error) << dir << ": cannot create: " << error.message();
  path_ = dir + "/rank_" + std::to_string(rank) + ".json";
  out_.open(path_, std::ios::out | std::ios::trunc | std::ios::binary);
  DPT_CHECK_AS(ErrorKind::kIo, out_.good())
      << path_ << ": cannot open for writing: " << std::strerror(errno);
  out_ << "[\n";
  write(metadata("process_name", rank, 0, {{"name", "rank " + std::to_string(rank)}}));
  write(metadata("process_sort_index", rank, 0, {{"sort_index", rank}}));
}

int TraceWriter::thread_index() {
  const auto [it, added] =
      threads_.emplace(std::this_thread::get_id(), static_cast<int>(threads_.size()));
  if (added) {
    const std::string name =
        it->second == 0 ? "trainer" : "communication " + std::to_string(it->second);
    write(metadata("thread_name", rank_, it->second, {{"name", name}}));
  }
  return it->second;
}

void TraceWriter::span(const char* category, const std::string& name, Clock::time_point begin,
                       Clock::time_point end) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (stopped_) return;
  const int tid = thread_index();
  nlohmann::json event = {{"ph", "X"},
                          {"cat", category},
                          {"name", name},
                          {"pid", rank_},
                          {"tid", tid},
                          {"ts", micros(begin - origin_)},
                          {"dur", micros(end - begin)}};
  write(event.dump());
}

void TraceWriter::stop() {
  std::lock_guard<std::mutex> lock(mutex_);
  stopped_ = true;
}

void TraceWriter::write(const std::string& line) {
  // Strict JSON has no comma after the last element, so the separator goes before each event,
  // replacing the previous closing bracket.
  if (!empty_) out_.seekp(-kCloseBytes, std::ios::end);
  out_ << (empty_ ? "" : ",\n") << line << kClose;
  empty_ = false;
  out_.flush();
  // A trace is a diagnostic: a full disk stops it, never the training.
  if (!out_.good()) stopped_ = true;
}

int64_t merge_traces(const std::string& run_dir, const std::string& out) {
  const std::string dir = run_dir + "/trace";
  const std::regex name(R"(rank_(\d+)\.json)");
  std::vector<std::pair<int, std::string>> files;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(dir, error)) {
    std::smatch match;
    const std::string file = entry.path().filename().string();
    if (std::regex_match(file, match, name)) {
      files.emplace_back(std::stoi(match[1].str()), entry.path().string());
    }
  }
  DPT_CHECK_AS(ErrorKind::kData, !error && !files.empty())
      << dir << ": no rank_<r>.json traces (run with trace { enabled: true })";
  std::sort(files.begin(), files.end());
  std::vector<nlohmann::json> meta, spans;
  for (const auto& [rank, path] : files) {
    for (nlohmann::json& event : read_events(path)) {
      (event.value("ph", "") == "M" ? meta : spans).push_back(std::move(event));
    }
  }
  // Per process and thread, by start time (then longest first, so parents precede children).
  std::stable_sort(
      spans.begin(), spans.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
        const auto key = [](const nlohmann::json& e) {
          return std::make_tuple(e.value("pid", 0), e.value("tid", 0), e.value("ts", int64_t{0}),
                                 -e.value("dur", int64_t{0}));
        };
        return key(a) < key(b);
      });
  std::ostringstream text;
  text << "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n";
  bool first = true;
  for (const auto* group : {&meta, &spans}) {
    for (const nlohmann::json& event : *group) {
      text << (first ? "" : ",\n") << event.dump();
      first = false;
    }
  }
  text << "\n]}\n";
  std::ofstream file(out, std::ios::trunc);
  file << text.str();
  file.flush();
  DPT_CHECK_AS(ErrorKind::kIo, file.good()) << out << ": write failed: " << std::strerror(errno);
  return static_cast<int64_t>(spans.size());
}

}  // namespace dpt
