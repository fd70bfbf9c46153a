// The line chart sections of the report page: training curves (loss, accuracy, learning rate,
// throughput, gradient norm) and any other numeric metric logged with a step.
#include <fmt/core.h>

#include <algorithm>
#include <cmath>

#include "launch/report_html.h"

namespace dpt::report_page {

namespace {

constexpr std::size_t kMaxOtherCharts = 12;

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

}  // namespace

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

}  // namespace dpt::report_page
