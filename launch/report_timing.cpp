// The time sections of the report page: the step-time split by phase ("time_ms" of train
// records) and the per-rank compute and waiting times ("ranks" records).
#include <fmt/core.h>

#include <algorithm>
#include <cmath>

#include "launch/report_html.h"

namespace dpt::report_page {

namespace {

constexpr std::size_t kMaxStepTimeBars = 40;
constexpr std::size_t kMaxRankLines = 4;
const char* const kPhases[] = {"data", "forward", "backward", "sync", "norm", "optimizer"};

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

}  // namespace

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

}  // namespace dpt::report_page
