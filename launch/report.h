// `dpt report RUN_DIR`: one self-contained HTML page about a run, readable offline. Charts are
// inline SVG from launch/svg_plot (no scripts, no network). Sources: RUN_DIR/metrics.jsonl
// (train, eval and optional ranks records), RUN_DIR/config.prototxt (header summary) and any
// RUN_DIR/*.json whose top-level object has a "benchmark" key (tables). Loading and rendering are
// separate so the page can be built from records in memory (build_report_html).
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace dpt {

// One metrics.jsonl line, flattened: nested objects become dotted keys ("time_ms.forward").
struct MetricRecord {
  std::string kind;                                   // "train", "eval", "ranks"; "" if absent
  std::map<std::string, double> numbers;              // numeric fields; JSON null reads as NaN
  std::map<std::string, std::vector<double>> arrays;  // arrays of numbers ("step_ms")
  std::map<std::string, std::string> texts;           // any other value, as text
};

struct MetricsLog {
  std::vector<MetricRecord> records;
  int64_t lines = 0;               // non-blank lines read
  std::vector<int64_t> bad_lines;  // one-based numbers of lines that are not a JSON object
};

// Parses metrics.jsonl text. Lines that do not parse are counted in bad_lines, never fatal.
MetricsLog parse_metrics(const std::string& text);

// A benchmark JSON file as tables: its scalar fields (nested objects flattened to dotted keys)
// and the rows of its array of objects ("rows" when present, else the first such array).
struct BenchmarkTable {
  std::string file;   // file name inside the run directory
  std::string title;  // the "benchmark" value
  std::vector<std::pair<std::string, std::string>> fields;
  std::string rows_key;              // name of the array shown as rows; "" when none
  std::vector<std::string> columns;  // union of the rows' flattened keys, first seen first
  std::vector<std::vector<std::string>> rows;  // one cell per column; "" where absent
};

// Parses `text` (the contents of `file`); false when it is not JSON or has no "benchmark" key.
bool parse_benchmark(const std::string& file, const std::string& text, BenchmarkTable& table);

// A number as the report shows it: integers exactly, others to 4 significant digits, NaN "null".
std::string report_number(double value);

// Count, range and last value of one (record kind, key) of a metrics log.
struct MetricKeyStats {
  std::string kind, key;
  int64_t count = 0;                                      // records that have the key
  double min = std::numeric_limits<double>::infinity();   // over finite values, array elements too;
  double max = -std::numeric_limits<double>::infinity();  // min > max when there were none
  std::string last;                                       // the last record's value, as text
};

// Every (kind, key) of `log`: kinds sorted, keys in the order first seen within a kind.
std::vector<MetricKeyStats> metric_key_stats(const MetricsLog& log);

// The header's summary of a run's config.prototxt text: its name and (setting, value) rows
// (model, parameters, optimizer, schedule, batch, data, device). `error` says why there are
// none: no config, or text that does not parse (the parser's message).
struct ConfigSummary {
  std::string name;
  std::vector<std::pair<std::string, std::string>> rows;
  std::string error;
};
ConfigSummary summarize_config(const std::string& config_text);

struct ReportInput {
  std::string run_dir;
  std::string config_text;  // RUN_DIR/config.prototxt; empty when the run has none
  MetricsLog metrics;
  std::vector<BenchmarkTable> benchmarks;
  std::vector<std::string> notes;  // problems met while loading (files skipped), shown on the page
};

// Reads everything the report shows. Throws kData naming the path when the run directory or its
// metrics.jsonl is missing or unreadable.
ReportInput load_report_input(const std::string& run_dir);

// The whole page. Pure: the same input gives the same bytes (no timestamps).
std::string build_report_html(const ReportInput& input);

// Loads `run_dir` and writes the page to `out_path` atomically (kIo on failure).
void write_report(const std::string& run_dir, const std::string& out_path);

struct ReportArgs {
  std::string run_dir;
  std::string out;  // default RUN_DIR/report.html
};
// dpt report RUN_DIR [--out FILE]: writes the page and prints its path.
int run_report(const ReportArgs& args);

}  // namespace dpt
