// build_report_html: the report page from loaded records. Sections: header and key numbers,
// config, training curves, step-time split, per-rank times, other metrics, benchmarks, and a
// table of every metric key (the chart sections and the shared pieces are in
// launch/report_html.h). Every text from the run is escaped; the page has no scripts and no
// external resources.
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "devices/error.h"
#include "launch/report.h"
#include "launch/report_html.h"
#include "launch/svg_plot.h"

namespace dpt {

using namespace report_page;

namespace {

namespace fs = std::filesystem;

std::string duration(double seconds) {
  if (!std::isfinite(seconds)) return "—";
  if (seconds < 60) return fmt::format("{:.1f} s", seconds);
  const auto s = static_cast<int64_t>(std::round(seconds));
  if (s < 3600) return fmt::format("{} min {:02} s", s / 60, s % 60);
  return fmt::format("{} h {:02} min", s / 3600, s % 3600 / 60);
}

void card(std::string& html, const std::string& label, const std::string& value,
          const std::string& note = "") {
  html += "<div class=\"card\"><div class=\"label\">" + esc(label) + "</div><div class=\"value\">" +
          esc(value) + "</div>";
  if (!note.empty()) html += "<div class=\"note\">" + esc(note) + "</div>";
  html += "</div>\n";
}

void key_numbers(std::string& html, const MetricsLog& log) {
  double steps = NAN, epochs = NAN;
  for (const MetricRecord& r : log.records) {
    if (auto it = r.numbers.find("step"); it != r.numbers.end() && std::isfinite(it->second)) {
      steps = std::isnan(steps) ? it->second : std::max(steps, it->second);
    }
    if (auto it = r.numbers.find("epoch"); it != r.numbers.end() && std::isfinite(it->second)) {
      epochs = std::isnan(epochs) ? it->second + 1 : std::max(epochs, it->second + 1);
    }
  }
  const Points accuracy = points(log, "eval", "test_accuracy", 100);
  std::string best;
  double best_value = -INFINITY;
  for (std::size_t i = 0; i < accuracy.y.size(); ++i) {
    if (std::isfinite(accuracy.y[i]) && accuracy.y[i] > best_value) {
      best_value = accuracy.y[i];
      best = fmt::format("best {:.2f}% at step {}", best_value, report_number(accuracy.x[i]));
    }
  }
  std::vector<double> speed = points(log, "train", "samples_per_s").y;
  speed.erase(
      std::remove_if(speed.begin(), speed.end(), [](double v) { return !std::isfinite(v); }),
      speed.end());
  std::sort(speed.begin(), speed.end());
  const double acc = last_finite(accuracy.y);
  const double train_loss = last_finite(points(log, "train", "loss").y);
  const double test_loss = last_finite(points(log, "eval", "test_loss").y);
  html += "<div class=\"cards\">\n";
  card(html, "steps", std::isnan(steps) ? "—" : report_number(steps),
       std::isnan(epochs) ? "" : fmt::format("{} epochs", report_number(epochs)));
  card(html, "test accuracy", std::isnan(acc) ? "—" : fmt::format("{:.2f}%", acc), best);
  card(html, "test loss", std::isnan(test_loss) ? "—" : report_number(test_loss),
       "last evaluation");
  card(html, "train loss", std::isnan(train_loss) ? "—" : report_number(train_loss), "last logged");
  card(html, "throughput", speed.empty() ? "—" : report_number(std::round(speed[speed.size() / 2])),
       "samples/s, median");
  card(html, "elapsed", duration(last_finite(points(log, "train", "elapsed_s").y)),
       "at the last train record");
  html += "</div>\n";
}

void config_section(std::string& html, const ConfigSummary& summary, const std::string& text) {
  html += "<section id=\"config\"><h2>Configuration</h2>\n";
  if (!summary.error.empty()) {
    empty_note(html, summary.error);
  } else {
    std::vector<std::vector<std::string>> rows;
    for (const auto& [key, value] : summary.rows) rows.push_back({key, value});
    table(html, {"setting", "value"}, rows, "kv");
  }
  if (!text.empty()) {
    html += "<details><summary>config.prototxt</summary><pre>" + esc(text) + "</pre></details>\n";
  }
  html += "</section>\n";
}

void benchmarks_section(std::string& html, const std::vector<BenchmarkTable>& benchmarks) {
  html += "<section id=\"benchmarks\"><h2>Benchmarks</h2>\n";
  if (benchmarks.empty()) {
    empty_note(html, "none: no *.json file with a \"benchmark\" key in the run directory.");
  }
  for (const BenchmarkTable& b : benchmarks) {
    html += "<h3>" + esc(b.title) + " <span class=\"file\">" + esc(b.file) + "</span></h3>\n";
    if (!b.fields.empty()) {
      std::vector<std::vector<std::string>> rows;
      for (const auto& [key, value] : b.fields) rows.push_back({key, value});
      html += "<details><summary>" + std::to_string(b.fields.size()) + " fields</summary>\n";
      table(html, {"field", "value"}, rows, "kv");
      html += "</details>\n";
    }
    if (!b.rows.empty()) table(html, b.columns, b.rows, "num");
  }
  html += "</section>\n";
}

void metrics_table_section(std::string& html, const MetricsLog& log) {
  html += "<section id=\"all-metrics\"><h2>Every metric in metrics.jsonl</h2>\n";
  std::vector<std::vector<std::string>> rows;
  for (const MetricKeyStats& s : metric_key_stats(log)) {
    const bool has_range = s.min <= s.max;
    rows.push_back({s.kind.empty() ? "(none)" : s.kind, s.key, std::to_string(s.count),
                    has_range ? report_number(s.min) : "", has_range ? report_number(s.max) : "",
                    s.last});
  }
  if (rows.empty()) {
    empty_note(html, "metrics.jsonl has no records.");
  } else {
    table(html, {"record kind", "key", "count", "min", "max", "last"}, rows, "num metrics");
  }
  html += "</section>\n";
}

constexpr const char* kStyle = R"(
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;
 color:#111827;background:#f3f4f6}
header{background:#111827;color:#f9fafb;padding:22px 32px 18px}
header h1{margin:0;font-size:24px;font-weight:650}
header .sub{color:#9ca3af;margin-top:4px;font-size:13px}
header nav{margin-top:12px;font-size:13px}
header nav a{color:#93c5fd;margin-right:16px;text-decoration:none}
main{max-width:1180px;margin:0 auto;padding:18px 24px 48px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:12px}
.card{background:#fff;border-radius:10px;padding:12px 16px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.card .label{font-size:11px;color:#6b7280;text-transform:uppercase;letter-spacing:.05em}
.card .value{font-size:22px;font-weight:650;margin-top:2px}
.card .note{font-size:12px;color:#6b7280}
section{background:#fff;border-radius:10px;padding:16px 20px 18px;margin-top:18px;
 box-shadow:0 1px 2px rgba(0,0,0,.08)}
h2{font-size:17px;margin:0 0 12px}
h3{font-size:15px;margin:18px 0 8px}
h3 .file{font-weight:400;color:#6b7280;font-size:12px;margin-left:8px}
.charts{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:14px 20px}
@media (max-width:900px){.charts{grid-template-columns:1fr}}
figure{margin:0}
svg.chart{width:100%;height:auto;display:block}
.table-wrap{overflow-x:auto}
table{border-collapse:collapse;font-size:13px;margin-top:6px}
th,td{padding:4px 12px;border-bottom:1px solid #e5e7eb;text-align:left;vertical-align:top}
th{background:#f9fafb;font-weight:600;color:#374151;white-space:nowrap}
table.num td{font-variant-numeric:tabular-nums;text-align:right;white-space:nowrap}
table.num td:first-child,table.metrics td:nth-child(2),table.metrics td:last-child{text-align:left}
table.kv td:first-child{color:#6b7280;white-space:nowrap}
.empty{color:#6b7280;font-style:italic;margin:4px 0}
.warn{background:#fef3c7;border:1px solid #f59e0b;border-radius:8px;padding:10px 14px;
 margin-bottom:14px}
details{margin-top:10px}
summary{cursor:pointer;color:#2563eb}
pre{background:#f9fafb;border:1px solid #e5e7eb;border-radius:6px;padding:10px 12px;
 font-size:12px;overflow:auto;max-height:420px}
footer{color:#6b7280;font-size:12px;text-align:center;margin-top:24px}
)";

std::string run_title(const ReportInput& input, const ConfigSummary& config) {
  if (!config.name.empty() && config.name != "run") return config.name;
  fs::path dir(input.run_dir);
  if (dir.filename().empty()) dir = dir.parent_path();
  return dir.filename().empty() ? input.run_dir : dir.filename().string();
}

}  // namespace

std::string build_report_html(const ReportInput& input) {
  const ConfigSummary config = summarize_config(input.config_text);
  const MetricsLog& log = input.metrics;
  const std::string title = run_title(input, config);
  std::string html = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  html += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  html += "<title>dpt report: " + esc(title) + "</title>\n<style>" + kStyle + "</style>\n";
  html += "</head>\n<body>\n<header>\n<h1>" + esc(title) + "</h1>\n";
  html += "<div class=\"sub\">run directory " + esc(input.run_dir) + " · " +
          std::to_string(log.records.size()) + " records in metrics.jsonl · dpt report</div>\n";
  html +=
      "<nav><a href=\"#config\">Configuration</a><a href=\"#curves\">Curves</a>"
      "<a href=\"#step-time\">Step time</a><a href=\"#ranks\">Ranks</a>"
      "<a href=\"#benchmarks\">Benchmarks</a><a href=\"#all-metrics\">All metrics</a></nav>\n";
  html += "</header>\n<main>\n";
  if (!log.bad_lines.empty() || !input.notes.empty()) {
    html += "<div class=\"warn\">";
    if (!log.bad_lines.empty()) {
      std::string numbers;
      for (std::size_t i = 0; i < std::min<std::size_t>(log.bad_lines.size(), 10); ++i) {
        numbers += (i ? ", " : "") + std::to_string(log.bad_lines[i]);
      }
      if (log.bad_lines.size() > 10) numbers += ", ...";
      html +=
          esc(fmt::format("{} of {} lines of metrics.jsonl did not parse and were skipped "
                          "(lines {}).",
                          log.bad_lines.size(), log.lines, numbers));
    }
    for (const std::string& note : input.notes) html += "<div>" + esc(note) + "</div>";
    html += "</div>\n";
  }
  key_numbers(html, log);
  config_section(html, config, input.config_text);
  curves_section(html, log);
  step_time_section(html, log);
  ranks_section(html, log);
  other_section(html, log);
  benchmarks_section(html, input.benchmarks);
  metrics_table_section(html, log);
  html += "<footer>Generated by dpt report. Self-contained: no scripts, no network.</footer>\n";
  html += "</main>\n</body>\n</html>\n";
  return html;
}

}  // namespace dpt
