// Loading a run directory for the report: metrics.jsonl records, config.prototxt and benchmark
// JSON files; the per-key statistics the page shows; `dpt report` itself. The config summary is
// report_config.cpp; the page is built in report_html.cpp.
#include "launch/report.h"

#include <fmt/core.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/atomic_file.h"
#include "devices/error.h"

namespace dpt {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::uintmax_t kMaxBenchmarkBytes = 16 << 20;
constexpr std::size_t kMaxBenchmarkRows = 5000;
constexpr std::size_t kMaxCellChars = 80;

// A JSON scalar (or a short dump of anything else) as table text.
std::string value_text(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_integer() || value.is_number_unsigned()) return value.dump();
  if (value.is_number_float()) return fmt::format("{:.6g}", value.get<double>());
  std::string text = value.dump();
  if (text.size() > kMaxCellChars) text = text.substr(0, kMaxCellChars - 3) + "...";
  return text;
}

// Adds `value` under `prefix` to `out`, objects flattened into dotted keys.
void flatten(const json& value, const std::string& prefix,
             std::vector<std::pair<std::string, json>>& out) {
  if (value.is_object() && !value.empty()) {
    for (const auto& [key, item] : value.items()) {
      flatten(item, prefix.empty() ? key : prefix + "." + key, out);
    }
  } else {
    out.emplace_back(prefix, value);
  }
}

bool numeric_array(const json& value) {
  if (!value.is_array() || value.empty()) return false;
  return std::all_of(value.begin(), value.end(),
                     [](const json& v) { return v.is_number() || v.is_null(); });
}

double number_of(const json& value) { return value.is_null() ? NAN : value.get<double>(); }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  DPT_CHECK_AS(ErrorKind::kData, in.good()) << path << ": cannot read: " << std::strerror(errno);
  std::ostringstream text;
  text << in.rdbuf();
  DPT_CHECK_AS(ErrorKind::kData, !in.bad()) << path << ": read failed: " << std::strerror(errno);
  return text.str();
}

void add_value(MetricKeyStats& s, double v) {
  if (std::isfinite(v)) s.min = std::min(s.min, v), s.max = std::max(s.max, v);
}

}  // namespace

std::string report_number(double v) {
  if (!std::isfinite(v)) return std::isnan(v) ? "null" : (v > 0 ? "inf" : "-inf");
  if (v == std::round(v) && std::abs(v) < 1e15) return fmt::format("{:.0f}", v);
  return fmt::format("{:.4g}", v);
}

std::vector<MetricKeyStats> metric_key_stats(const MetricsLog& log) {
  std::vector<MetricKeyStats> stats;
  std::map<std::pair<std::string, std::string>, std::size_t> index;
  auto find = [&](const std::string& kind, const std::string& key) -> MetricKeyStats& {
    const auto [it, inserted] = index.emplace(std::pair(kind, key), stats.size());
    if (inserted) {
      stats.emplace_back();
      stats.back().kind = kind;
      stats.back().key = key;
    }
    return stats[it->second];
  };
  for (const MetricRecord& r : log.records) {
    for (const auto& [key, v] : r.numbers) {
      MetricKeyStats& s = find(r.kind, key);
      ++s.count;
      add_value(s, v);
      s.last = report_number(v);
    }
    for (const auto& [key, values] : r.arrays) {
      MetricKeyStats& s = find(r.kind, key);
      ++s.count;
      s.last = "[";
      for (std::size_t i = 0; i < values.size(); ++i) {
        add_value(s, values[i]);
        if (i < 8) s.last += (i ? ", " : "") + report_number(values[i]);
      }
      s.last += values.size() > 8 ? ", ...]" : "]";
    }
    for (const auto& [key, text] : r.texts) {
      MetricKeyStats& s = find(r.kind, key);
      ++s.count;
      s.last = text;
    }
  }
  std::stable_sort(
      stats.begin(), stats.end(),
      [](const MetricKeyStats& a, const MetricKeyStats& b) { return a.kind < b.kind; });
  return stats;
}

MetricsLog parse_metrics(const std::string& text) {
  MetricsLog log;
  std::istringstream in(text);
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    ++log.lines;
    const json parsed = json::parse(line, nullptr, false);
    if (!parsed.is_object()) {
      log.bad_lines.push_back(number);
      continue;
    }
    MetricRecord record;
    std::vector<std::pair<std::string, json>> fields;
    flatten(parsed, "", fields);
    for (const auto& [key, value] : fields) {
      if (key == "kind" && value.is_string()) {
        record.kind = value.get<std::string>();
      } else if (value.is_number() || value.is_null()) {
        record.numbers[key] = number_of(value);
      } else if (numeric_array(value)) {
        std::vector<double>& numbers = record.arrays[key];
        for (const json& v : value) numbers.push_back(number_of(v));
      } else {
        record.texts[key] = value_text(value);
      }
    }
    log.records.push_back(std::move(record));
  }
  return log;
}

bool parse_benchmark(const std::string& file, const std::string& text, BenchmarkTable& table) {
  const json parsed = json::parse(text, nullptr, false);
  if (!parsed.is_object() || !parsed.contains("benchmark")) return false;
  table = BenchmarkTable{};
  table.file = file;
  table.title = value_text(parsed["benchmark"]);
  auto is_rows = [](const json& v) {
    return v.is_array() && !v.empty() &&
           std::all_of(v.begin(), v.end(), [](const json& row) { return row.is_object(); });
  };
  if (parsed.contains("rows") && is_rows(parsed["rows"])) {
    table.rows_key = "rows";
  } else {
    for (const auto& [key, value] : parsed.items()) {
      if (is_rows(value)) {
        table.rows_key = key;
        break;
      }
    }
  }
  for (const auto& [key, value] : parsed.items()) {
    if (key == "benchmark" || key == table.rows_key) continue;
    std::vector<std::pair<std::string, json>> fields;
    flatten(value, key, fields);
    for (const auto& [name, item] : fields) table.fields.emplace_back(name, value_text(item));
  }
  if (table.rows_key.empty()) return true;

  std::vector<std::vector<std::pair<std::string, json>>> rows;
  for (const json& row : parsed[table.rows_key]) {
    if (rows.size() == kMaxBenchmarkRows) break;
    rows.emplace_back();
    flatten(row, "", rows.back());
    for (const auto& [key, value] : rows.back()) {
      if (std::find(table.columns.begin(), table.columns.end(), key) == table.columns.end()) {
        table.columns.push_back(key);
      }
    }
  }
  for (const auto& row : rows) {
    std::vector<std::string> cells(table.columns.size());
    for (const auto& [key, value] : row) {
      const auto at = std::find(table.columns.begin(), table.columns.end(), key);
      cells[static_cast<std::size_t>(at - table.columns.begin())] = value_text(value);
    }
    table.rows.push_back(std::move(cells));
  }
  return true;
}

ReportInput load_report_input(const std::string& run_dir) {
  std::error_code error;
  DPT_CHECK_AS(ErrorKind::kData, fs::is_directory(run_dir, error))
      << run_dir << ": no such run directory";
  ReportInput input;
  input.run_dir = run_dir;
  const fs::path dir(run_dir);
  const std::string metrics_path = (dir / "metrics.jsonl").string();
  DPT_CHECK_AS(ErrorKind::kData, fs::is_regular_file(metrics_path, error))
      << metrics_path << ": no metrics file (is this a run directory of `dpt train`?)";
  input.metrics = parse_metrics(read_file(metrics_path));
  const fs::path config_path = dir / "config.prototxt";
  if (fs::is_regular_file(config_path, error)) input.config_text = read_file(config_path.string());

  std::vector<fs::path> json_files;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
    if (entry.path().extension() == ".json" && entry.is_regular_file(error)) {
      json_files.push_back(entry.path());
    }
  }
  std::sort(json_files.begin(), json_files.end());
  for (const fs::path& path : json_files) {
    const std::string name = path.filename().string();
    if (fs::file_size(path, error) > kMaxBenchmarkBytes) {
      input.notes.push_back(name + ": larger than 16 MiB, not read");
      continue;
    }
    std::string text;
    try {
      text = read_file(path.string());
    } catch (const Error& e) {
      input.notes.push_back(e.what());
      continue;
    }
    BenchmarkTable table;
    if (parse_benchmark(name, text, table)) {
      input.benchmarks.push_back(std::move(table));
    } else if (json::parse(text, nullptr, false).is_discarded()) {
      input.notes.push_back(name + ": not valid JSON, skipped");
    }
  }
  return input;
}

void write_report(const std::string& run_dir, const std::string& out_path) {
  const std::string html = build_report_html(load_report_input(run_dir));
  write_file_atomically(out_path, html.data(), html.size());
}

int run_report(const ReportArgs& args) {
  const std::string out =
      args.out.empty() ? (fs::path(args.run_dir) / "report.html").string() : args.out;
  const ReportInput input = load_report_input(args.run_dir);
  const std::string html = build_report_html(input);
  write_file_atomically(out, html.data(), html.size());
  fmt::print("report: {} ({} records", out, input.metrics.records.size());
  if (!input.metrics.bad_lines.empty()) {
    fmt::print(", {} unparsable lines of metrics.jsonl skipped", input.metrics.bad_lines.size());
  }
  fmt::print(")\n");
  return 0;
}

}  // namespace dpt
