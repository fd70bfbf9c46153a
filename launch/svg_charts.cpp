// The two charts of launch/svg_plot.h: line charts (linear or log y) and bar charts (stacked or
// grouped), drawn with the pieces of launch/svg_draw.h.
#include <fmt/core.h>

#include <algorithm>
#include <cmath>

#include "launch/svg_draw.h"
#include "launch/svg_plot.h"

namespace dpt {

using namespace svg;

std::string line_chart_svg(const LineChartSpec& spec) {
  double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
  std::vector<LegendItem> legend;
  for (std::size_t s = 0; s < spec.series.size(); ++s) {
    const Series& series = spec.series[s];
    legend.push_back({series.name, series_color(s), true, series.dashed});
    for (std::size_t i = 0; i < std::min(series.x.size(), series.y.size()); ++i) {
      if (!drawable(series.x[i], series.y[i], spec.log_y)) continue;
      x_lo = std::min(x_lo, series.x[i]);
      x_hi = std::max(x_hi, series.x[i]);
      y_lo = std::min(y_lo, series.y[i]);
      y_hi = std::max(y_hi, series.y[i]);
    }
  }
  const bool empty = !(x_lo <= x_hi);
  if (empty) x_lo = 0, x_hi = 1, y_lo = 0, y_hi = 1;
  if (std::isfinite(spec.x_min)) x_lo = std::min(x_lo, spec.x_min);
  if (std::isfinite(spec.x_max)) x_hi = std::max(x_hi, spec.x_max);

  // y ticks: linear ones extend the axis to nice bounds; log ones stay inside the padded range.
  std::vector<double> y_ticks;
  double y_step = 0;  // 0: log ticks, each labelled with the digits of its own decade
  if (spec.log_y) {
    const double pad = std::pow(y_hi / y_lo, 0.04) * 1.02;
    y_lo /= pad;
    y_hi *= pad;
    y_ticks = log_ticks(y_lo, y_hi);
  }
  if (!spec.log_y || y_ticks.size() < 3) {
    const Ticks t = nice_ticks(y_lo, y_hi, std::max(3, (spec.height - 110) / 32));
    y_step = t.step;
    y_ticks.clear();
    for (double v : t.values) {
      if (!spec.log_y || (v >= y_lo && v <= y_hi)) y_ticks.push_back(v);
    }
    if (!spec.log_y) y_lo = t.values.front(), y_hi = t.values.back();
  }
  const std::vector<std::string> y_labels = tick_labels(y_ticks, y_step);

  std::string out;
  open_svg(out, spec.title, spec.width, spec.height);
  const Frame f = make_frame(spec.width, spec.height, legend, y_labels, !spec.y_label.empty());
  draw_legend(out, legend, f.left, f.right - f.left);
  draw_axis_titles(out, f, spec.height, spec.x_label, spec.y_label);
  const Scale y{y_lo, y_hi, f.bottom, f.top, spec.log_y};
  for (std::size_t i = 0; i < y_ticks.size(); ++i) draw_y_tick(out, f, y(y_ticks[i]), y_labels[i]);

  // x: the data range; ticks inside it, as many as their labels allow.
  if (x_lo == x_hi) x_lo -= 1, x_hi += 1;
  const Ticks fine = nice_ticks(x_lo, x_hi, 10);
  std::size_t x_chars = 1;
  for (const std::string& label : tick_labels(fine.values, fine.step)) {
    x_chars = std::max(x_chars, label.size());
  }
  const Ticks xt = nice_ticks(x_lo, x_hi, max_labels(f.right - f.left, x_chars));
  std::vector<double> x_ticks;
  for (double v : xt.values) {
    if (v >= x_lo - 1e-9 * xt.step && v <= x_hi + 1e-9 * xt.step) x_ticks.push_back(v);
  }
  const std::vector<std::string> x_labels = tick_labels(x_ticks, xt.step);
  const Scale x{x_lo, x_hi, f.left, f.right};
  for (std::size_t i = 0; i < x_ticks.size(); ++i) {
    out += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" "
        "stroke-dasharray=\"2 3\"/>\n",
        x(x_ticks[i]), f.top, x(x_ticks[i]), f.bottom, kGridColor);
    if (!empty) draw_x_label(out, f, x(x_ticks[i]), x_labels[i]);
  }
  draw_axes(out, f);
  if (empty) {
    draw_no_data(out, f);
    return out + "</svg>\n";
  }

  for (std::size_t s = 0; s < spec.series.size(); ++s) {
    const Series& series = spec.series[s];
    const std::string color = series_color(s);
    std::string path;
    bool pen_down = false;
    const std::size_t n = std::min(series.x.size(), series.y.size());
    for (std::size_t i = 0; i < n; ++i) {
      if (!drawable(series.x[i], series.y[i], spec.log_y)) {
        pen_down = false;
        continue;
      }
      path += fmt::format("{}{:.1f} {:.1f}", pen_down ? "L" : "M", x(series.x[i]), y(series.y[i]));
      pen_down = true;
    }
    if (!path.empty()) {
      out += fmt::format(
          "<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\" "
          "stroke-linejoin=\"round\" stroke-linecap=\"round\"{}/>\n",
          path, color, series.dashed ? " stroke-dasharray=\"6 4\"" : "");
    }
    if (!series.markers) continue;
    for (std::size_t i = 0; i < n; ++i) {
      if (!drawable(series.x[i], series.y[i], spec.log_y)) continue;
      out += fmt::format(
          "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3.5\" fill=\"#fff\" stroke=\"{}\" "
          "stroke-width=\"2\"><title>{}: {} at {} {}</title></circle>\n",
          x(series.x[i]), y(series.y[i]), color, escape_xml(series.name), value_text(series.y[i]),
          escape_xml(spec.x_label), value_text(series.x[i]));
    }
  }
  return out + "</svg>\n";
}

std::string bar_chart_svg(const BarChartSpec& spec) {
  const std::size_t n = spec.categories.size();
  double y_hi = 0;
  for (std::size_t c = 0; c < n; ++c) {
    double sum = 0;
    for (const BarSeries& series : spec.series) {
      const double v = c < series.values.size() ? series.values[c] : NAN;
      if (!std::isfinite(v) || v <= 0) continue;
      sum += v;
      y_hi = std::max(y_hi, v);
    }
    if (spec.stacked) y_hi = std::max(y_hi, sum);
  }
  const bool empty = n == 0 || y_hi <= 0;
  const Ticks yt = nice_ticks(0, empty ? 1 : y_hi, std::max(3, (spec.height - 110) / 32));
  const std::vector<std::string> y_labels = tick_labels(yt.values, yt.step);
  std::vector<LegendItem> legend;
  for (std::size_t s = 0; s < spec.series.size(); ++s) {
    legend.push_back({spec.series[s].name, series_color(s), false, false});
  }

  std::string out;
  open_svg(out, spec.title, spec.width, spec.height);
  const Frame f = make_frame(spec.width, spec.height, legend, y_labels, !spec.y_label.empty());
  draw_legend(out, legend, f.left, f.right - f.left);
  draw_axis_titles(out, f, spec.height, spec.x_label, spec.y_label);
  const Scale y{yt.values.front(), yt.values.back(), f.bottom, f.top};
  for (std::size_t i = 0; i < yt.values.size(); ++i) {
    draw_y_tick(out, f, y(yt.values[i]), y_labels[i]);
  }
  if (empty) {
    draw_axes(out, f);
    draw_no_data(out, f);
    return out + "</svg>\n";
  }

  const double band = (f.right - f.left) / static_cast<double>(n);
  std::size_t label_chars = 1;
  for (const std::string& c : spec.categories) label_chars = std::max(label_chars, c.size());
  const std::size_t label_every =
      (n + static_cast<std::size_t>(max_labels(f.right - f.left, label_chars)) - 1) /
      static_cast<std::size_t>(max_labels(f.right - f.left, label_chars));
  const std::size_t groups = spec.stacked ? 1 : std::max<std::size_t>(1, spec.series.size());
  const double bar = std::min(band * (n > 30 ? 0.85 : 0.7), 90.0) / static_cast<double>(groups);
  for (std::size_t c = 0; c < n; ++c) {
    const double x0 = f.left + band * static_cast<double>(c) + (band - bar * groups) / 2;
    double base = 0;
    for (std::size_t s = 0; s < spec.series.size(); ++s) {
      const std::vector<double>& values = spec.series[s].values;
      const double v = c < values.size() ? values[c] : NAN;
      if (!std::isfinite(v) || v <= 0) continue;
      const double bottom = spec.stacked ? base : 0;
      const double x = spec.stacked ? x0 : x0 + bar * static_cast<double>(s);
      out += fmt::format(
          "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\">"
          "<title>{} {}: {} {}</title></rect>\n",
          x, y(bottom + v), std::max(bar - (groups > 1 ? 1.0 : 0.0), 0.5),
          y(bottom) - y(bottom + v), series_color(s), escape_xml(spec.categories[c]),
          escape_xml(spec.series[s].name), value_text(v), escape_xml(spec.y_label));
      base += v;
    }
    if (c % label_every == 0) draw_x_label(out, f, x0 + bar * groups / 2, spec.categories[c]);
  }
  draw_axes(out, f);
  return out + "</svg>\n";
}

}  // namespace dpt
