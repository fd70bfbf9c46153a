// build_report_html: the report page from loaded records. Sections: header and key numbers,
// config, training curves, step-time split, per-rank times, other metrics, benchmarks, and a
// table of every metric key. Every text from the run is escaped; the page has no scripts and
// no external resources.
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "devices/error.h"
#include "launch/report.h"
#include "launch/svg_plot.h"

namespace dpt {

namespace {

namespace fs = std::filesystem;
using Rows = std::vector<std::pair<std::string, std::string>>;

constexpr std::size_t kMaxStepTimeBars = 40;
constexpr std::size_t kMaxRankLines = 4;
constexpr std::size_t kMaxOtherCharts = 12;
const char* const kPhases[] = {"data", "forward", "backward", "sync", "norm", "optimizer"};

std::string esc(const std::string& text) { return escape_xml(text); }

std::string duration(double seconds) {
  if (!std::isfinite(seconds)) return "—";
  if (seconds < 60) return fmt::format("{:.1f} s", seconds);
  const auto s = static_cast<int64_t>(std::round(seconds));
  if (s < 3600) return fmt::format("{} min {:02} s", s / 60, s % 60);
  return fmt::format("{} h {:02} min", s / 3600, s % 3600 / 60);
}

struct Points {
  std::vector<double> x, y;
};

// (step, key * scale) of every record of `kind` that has `key`.
Points points(const MetricsLog& log, const std::string& kind, const std::string& key,
              double scale = 1) {
  Points p;
  for (const MetricRecord& r : log.records) {
    const auto it = r.numbers.find(key);
    if (r.kind != kind || it == r.numbers.end()) continue;
    const auto step = r.numbers.find("step");
    p.x.push_back(step == r.numbers.end() ? NAN : step->second);
    p.y.push_back(it->second * scale);
  }
  return p;
}

double last_finite(const std::vector<double>& values) {
  for (auto it = values.rbegin(); it != values.rend(); ++it) {
    if (std::isfinite(*it)) return *it;
  }
  return NAN;
}

Series series(const std::string& name, const Points& p, bool markers = false) {
  Series s;
  s.name = name;
  s.x = p.x;
  s.y = p.y;
  s.markers = markers;
  return s;
}

void table(std::string& html, const std::vector<std::string>& head,
           const std::vector<std::vector<std::string>>& body, const std::string& cls = "") {
  html += "<div class=\"table-wrap\"><table" + (cls.empty() ? "" : " class=\"" + cls + "\"") +
          ">\n<thead><tr>";
  for (const std::string& h : head) html += "<th>" + esc(h) + "</th>";
  html += "</tr></thead>\n<tbody>\n";
  for (const auto& row : body) {
    html += "<tr>";
    for (const std::string& cell : row) html += "<td>" + esc(cell) + "</td>";
    html += "</tr>\n";
  }
  html += "</tbody></table></div>\n";
}

void empty_note(std::string& html, const std::string& text) {
  html += "<p class=\"empty\">" + esc(text) + "</p>\n";
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

// The largest step of any record (NaN when none): line charts share the x range [0, it].
double last_step(const MetricsLog& log) {
  double last = NAN;
  for (const MetricRecord& r : log.records) {
    const auto it = r.numbers.find("step");
    if (it != r.numbers.end() && std::isfinite(it->second)) {
      last = std::isnan(last) ? it->second : std::max(last, it->second);
    }
  }
  return last;
}

LineChartSpec line_spec(const MetricsLog& log, const std::string& title,
                        const std::string& y_label) {
  LineChartSpec spec;
  spec.title = title;
  spec.x_label = "step";
  spec.y_label = y_label;
  spec.x_min = 0;
  spec.x_max = last_step(log);
  return spec;
}

void chart(std::string& html, const std::string& svg) { html += "<figure>" + svg + "</figure>\n"; }

void curves_section(std::string& html, const MetricsLog& log) {
  html += "<section id=\"curves\"><h2>Training curves</h2>\n<div class=\"charts\">\n";
  const Points train_loss = points(log, "train", "loss"),
               test_loss = points(log, "eval", "test_loss");
  double lo = INFINITY, hi = 0;
  for (const Points* p : {&train_loss, &test_loss}) {
    for (double v : p->y) {
      if (std::isfinite(v) && v > 0) lo = std::min(lo, v), hi = std::max(hi, v);
    }
  }
  LineChartSpec loss = line_spec(log, "Loss", "loss");
  loss.log_y = hi / lo >= 5;  // a long decay reads better on a log axis
  if (loss.log_y) loss.title += " (log scale)";
  loss.series = {series("train loss", train_loss), series("test loss", test_loss, true)};
  chart(html, line_chart_svg(loss));
  LineChartSpec accuracy = line_spec(log, "Test accuracy", "accuracy (%)");
  accuracy.series = {series("test accuracy", points(log, "eval", "test_accuracy", 100), true)};
  chart(html, line_chart_svg(accuracy));
  LineChartSpec lr = line_spec(log, "Learning rate", "lr");
  lr.series = {series("lr", points(log, "train", "lr"))};
  chart(html, line_chart_svg(lr));
  LineChartSpec speed = line_spec(log, "Throughput", "samples/s");
  speed.series = {series("samples/s", points(log, "train", "samples_per_s"))};
  chart(html, line_chart_svg(speed));
  LineChartSpec norm = line_spec(log, "Gradient norm (before clipping)", "L2 norm");
  norm.series = {series("grad norm", points(log, "train", "grad_norm"))};
  chart(html, line_chart_svg(norm));
  html += "</div></section>\n";
}

// Phases of "time_ms": the known ones in step order, then any others, as seen.
std::vector<std::string> phases(const MetricsLog& log) {
  std::vector<std::string> found;
  for (const char* p : kPhases) found.push_back(p);
  for (const MetricRecord& r : log.records) {
    for (const auto& [key, value] : r.numbers) {
      if (r.kind != "train" || key.rfind("time_ms.", 0) != 0) continue;
      if (std::find(found.begin(), found.end(), key.substr(8)) == found.end()) {
        found.push_back(key.substr(8));
      }
    }
  }
  return found;
}

void step_time_section(std::string& html, const MetricsLog& log) {
  html += "<section id=\"step-time\"><h2>Step-time split</h2>\n";
  std::vector<const MetricRecord*> timed;
  for (const MetricRecord& r : log.records) {
    const auto it = r.numbers.lower_bound("time_ms.");
    if (r.kind == "train" && it != r.numbers.end() && it->first.rfind("time_ms.", 0) == 0) {
      timed.push_back(&r);
    }
  }
  if (timed.empty()) {
    empty_note(html, "not recorded: no train record has a \"time_ms\" field.");
    html += "</section>\n";
    return;
  }
  const std::vector<std::string> names = phases(log);
  // Consecutive records are averaged in groups of equal size, at most kMaxStepTimeBars bars.
  const std::size_t group = (timed.size() + kMaxStepTimeBars - 1) / kMaxStepTimeBars;
  const std::size_t bins = (timed.size() + group - 1) / group;
  BarChartSpec spec;
  spec.title = group == 1
                   ? "Mean time per step by phase, per logging window"
                   : fmt::format("Mean time per step by phase, per {} logging windows", group);
  spec.x_label = "step (end of window)";
  spec.y_label = "ms";
  spec.width = 1100;
  spec.height = 340;
  for (const std::string& name : names) spec.series.push_back({name, {}});
  std::vector<double> total(names.size(), 0);
  std::vector<int64_t> counted(names.size(), 0);
  for (std::size_t b = 0; b < bins; ++b) {
    const std::size_t from = b * group, to = std::min(from + group, timed.size());
    const auto step = timed[to - 1]->numbers.find("step");
    spec.categories.push_back(step == timed[to - 1]->numbers.end() ? "?"
                                                                   : report_number(step->second));
    for (std::size_t p = 0; p < names.size(); ++p) {
      double sum = 0;
      int64_t n = 0;
      for (std::size_t i = from; i < to; ++i) {
        const auto it = timed[i]->numbers.find("time_ms." + names[p]);
        if (it == timed[i]->numbers.end() || !std::isfinite(it->second)) continue;
        sum += it->second;
        ++n;
      }
      spec.series[p].values.push_back(n > 0 ? sum / n : NAN);
      total[p] += sum;
      counted[p] += n;
    }
  }
  html += "<figure class=\"wide\">" + bar_chart_svg(spec) + "</figure>\n";
  double all = 0;
  for (std::size_t p = 0; p < names.size(); ++p) all += counted[p] ? total[p] / counted[p] : 0;
  std::vector<std::vector<std::string>> rows;
  for (std::size_t p = 0; p < names.size(); ++p) {
    if (counted[p] == 0) {
      rows.push_back({names[p], "not recorded", ""});
      continue;
    }
    const double mean = total[p] / counted[p];
    rows.push_back({names[p], fmt::format("{:.3f}", mean),
                    all > 0 ? fmt::format("{:.1f}%", 100 * mean / all) : ""});
  }
  rows.push_back({"total", fmt::format("{:.3f}", all), "100%"});
  table(html, {"phase", "mean ms/step", "share"}, rows, "num");
  html += "</section>\n";
}

void ranks_section(std::string& html, const MetricsLog& log) {
  html += "<section id=\"ranks\"><h2>Per-rank times</h2>\n";
  std::vector<const MetricRecord*> records;
  std::size_t ranks = 0;
  for (const MetricRecord& r : log.records) {
    const auto it = r.arrays.find("step_ms");
    if (r.kind != "ranks" || it == r.arrays.end()) continue;
    records.push_back(&r);
    ranks = std::max(ranks, it->second.size());
  }
  if (records.empty()) {
    empty_note(html, "not recorded (single process): metrics.jsonl has no \"ranks\" records.");
    html += "</section>\n";
    return;
  }
  // Mean over records of each rank's step and wait time.
  std::vector<double> step(ranks, 0), wait(ranks, 0);
  std::vector<int64_t> step_n(ranks, 0), wait_n(ranks, 0);
  auto accumulate = [&](const MetricRecord& r, const std::string& key, std::vector<double>& sum,
                        std::vector<int64_t>& n) {
    const auto it = r.arrays.find(key);
    if (it == r.arrays.end()) return;
    for (std::size_t k = 0; k < std::min(it->second.size(), ranks); ++k) {
      if (std::isfinite(it->second[k])) sum[k] += it->second[k], ++n[k];
    }
  };
  for (const MetricRecord* r : records) {
    accumulate(*r, "step_ms", step, step_n);
    accumulate(*r, "wait_ms", wait, wait_n);
  }
  // step_ms is a rank's compute time (its step minus waiting), so the two stack to the step.
  BarChartSpec bars;
  bars.title = "Mean time per step, by rank";
  bars.x_label = "rank";
  bars.y_label = "ms";
  bars.series = {{"compute (step_ms)", {}}, {"waiting in collectives (wait_ms)", {}}};
  std::vector<std::vector<std::string>> rows;
  for (std::size_t k = 0; k < ranks; ++k) {
    const double s = step_n[k] ? step[k] / step_n[k] : NAN,
                 w = wait_n[k] ? wait[k] / wait_n[k] : NAN;
    bars.categories.push_back(std::to_string(k));
    bars.series[0].values.push_back(s);
    bars.series[1].values.push_back(w);
    rows.push_back({std::to_string(k), fmt::format("{:.2f}", s), fmt::format("{:.2f}", w),
                    std::isfinite(s) && std::isfinite(w) && s + w > 0
                        ? fmt::format("{:.1f}%", 100 * w / (s + w))
                        : ""});
  }
  html += "<div class=\"charts\">\n";
  chart(html, bar_chart_svg(bars));
  // One line per rank for a few ranks; past that, the spread: fastest, median and slowest.
  LineChartSpec lines = line_spec(log, "Compute time per rank", "ms");
  const bool spread = ranks > kMaxRankLines;
  std::vector<Points> per_line(spread ? 3 : ranks);
  for (const MetricRecord* r : records) {
    const auto s = r->numbers.find("step");
    std::vector<double> values = r->arrays.at("step_ms");
    values.resize(ranks, NAN);
    if (spread) {
      values.erase(
          std::remove_if(values.begin(), values.end(), [](double v) { return !std::isfinite(v); }),
          values.end());
      std::sort(values.begin(), values.end());
      values = values.empty()
                   ? std::vector<double>(3, NAN)
                   : std::vector<double>{values.front(), values[values.size() / 2], values.back()};
    }
    for (std::size_t k = 0; k < per_line.size(); ++k) {
      per_line[k].x.push_back(s == r->numbers.end() ? NAN : s->second);
      per_line[k].y.push_back(values[k]);
    }
  }
  for (std::size_t k = 0; k < per_line.size(); ++k) {
    const std::string name =
        spread ? std::vector<std::string>{"fastest rank", "median", "slowest rank"}[k]
               : "rank " + std::to_string(k);
    lines.series.push_back(series(name, per_line[k], records.size() < 30));
  }
  if (spread) lines.title += fmt::format(" (spread over {} ranks)", ranks);
  chart(html, line_chart_svg(lines));
  const Points ratio = points(log, "ranks", "ratio");
  if (!ratio.y.empty()) {
    LineChartSpec spec = line_spec(log, "Slowest rank over the median", "compute ratio");
    spec.series = {series("slowest / median", ratio, ratio.y.size() < 30)};
    chart(html, line_chart_svg(spec));
  }
  html += "</div>\n";
  table(html, {"rank", "mean step_ms (compute)", "mean wait_ms", "waiting share"}, rows, "num");
  html += "</section>\n";
}

// Numeric keys with a step that no other section plots, as (kind, key).
std::vector<std::pair<std::string, std::string>> other_keys(const MetricsLog& log) {
  const std::vector<std::string> plotted = {
      "train.step",          "train.epoch",      "train.loss",         "train.lr",
      "train.samples_per_s", "train.grad_norm",  "train.elapsed_s",    "eval.step",
      "eval.epoch",          "eval.test_loss",   "eval.test_accuracy", "eval.samples",
      "ranks.step",          "ranks.first_step", "ranks.slowest",      "ranks.ratio"};
  std::vector<std::pair<std::string, std::string>> keys;
  for (const MetricRecord& r : log.records) {
    if (r.numbers.count("step") == 0) continue;
    for (const auto& [key, value] : r.numbers) {
      const std::string full = r.kind + "." + key;
      if (key == "step" || key == "epoch" || key.rfind("time_ms.", 0) == 0 ||
          std::find(plotted.begin(), plotted.end(), full) != plotted.end()) {
        continue;
      }
      if (std::find(keys.begin(), keys.end(), std::pair(r.kind, key)) == keys.end()) {
        keys.emplace_back(r.kind, key);
      }
    }
  }
  return keys;
}

void other_section(std::string& html, const MetricsLog& log) {
  const auto keys = other_keys(log);
  if (keys.empty()) return;
  html += "<section id=\"other\"><h2>Other metrics</h2>\n<div class=\"charts\">\n";
  for (std::size_t i = 0; i < std::min(keys.size(), kMaxOtherCharts); ++i) {
    const auto& [kind, key] = keys[i];
    LineChartSpec spec = line_spec(log, kind.empty() ? key : kind + " · " + key, key);
    const Points p = points(log, kind, key);
    spec.series = {series(key, p, p.x.size() < 30)};
    chart(html, line_chart_svg(spec));
  }
  html += "</div>\n";
  if (keys.size() > kMaxOtherCharts) {
    empty_note(html,
               fmt::format("{} more keys are in the table below.", keys.size() - kMaxOtherCharts));
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
