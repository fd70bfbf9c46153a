// SVG charts for the run report. Text widths are estimated from character counts (no font
// metrics): margins, legend wrapping and tick density are chosen so labels do not overlap.
#include "launch/svg_plot.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>

namespace dpt {

namespace {

constexpr double kCharWidth = 6.6;  // estimated px per character at the 11-12 px sizes used
constexpr const char* kFont = "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif";
constexpr const char* kTextColor = "#374151";
constexpr const char* kGridColor = "#e5e7eb";
constexpr const char* kAxisColor = "#9ca3af";

double text_width(const std::string& text) { return kCharWidth * static_cast<double>(text.size()); }

// Short value text for hover titles.
std::string value_text(double value) { return fmt::format("{:.4g}", value); }

// The plot area inside the chart and the decorations around it.
struct Frame {
  double left = 0, top = 0, right = 0, bottom = 0;  // plot area edges in px
};

struct LegendItem {
  std::string name;
  std::string color;
  bool line = true;  // a line swatch (line charts) or a square (bar charts)
  bool dashed = false;
};

// Width of one legend entry: swatch, gap, text, spacing.
double legend_item_width(const LegendItem& item) { return 24 + text_width(item.name) + 18; }

int legend_rows(const std::vector<LegendItem>& items, double width) {
  if (items.size() < 2) return 0;
  int rows = 1;
  double x = 0;
  for (const LegendItem& item : items) {
    const double w = legend_item_width(item);
    if (x > 0 && x + w > width) {
      ++rows;
      x = 0;
    }
    x += w;
  }
  return rows;
}

void open_svg(std::string& out, const std::string& title, int width, int height) {
  out += fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 {} {}\" "
      "width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"{}\" font-family=\"{}\">\n",
      width, height, width, height, escape_xml(title), kFont);
  out += fmt::format(
      "<text x=\"12\" y=\"20\" font-size=\"14\" font-weight=\"600\" fill=\"#111827\">{}</text>\n",
      escape_xml(title));
}

void draw_legend(std::string& out, const std::vector<LegendItem>& items, double x0, double width) {
  if (items.size() < 2) return;
  double x = 0, y = 40;
  for (const LegendItem& item : items) {
    const double w = legend_item_width(item);
    if (x > 0 && x + w > width) {
      x = 0;
      y += 18;
    }
    if (item.line) {
      out += fmt::format(
          "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" "
          "stroke-width=\"2.5\"{}/>\n",
          x0 + x, y - 4, x0 + x + 18, y - 4, item.color,
          item.dashed ? " stroke-dasharray=\"5 3\"" : "");
    } else {
      out += fmt::format(
          "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"12\" height=\"12\" rx=\"2\" fill=\"{}\"/>\n",
          x0 + x + 3, y - 10, item.color);
    }
    out += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"12\" fill=\"{}\">{}</text>\n",
                       x0 + x + 24, y, kTextColor, escape_xml(item.name));
    x += w;
  }
}

// Computes the plot area for a chart of `width` x `height` with the given legend and y labels.
Frame make_frame(int width, int height, const std::vector<LegendItem>& legend,
                 const std::vector<std::string>& y_labels, bool has_y_title) {
  double label_width = 36;  // a floor, so that charts side by side line up their axes
  for (const std::string& label : y_labels) label_width = std::max(label_width, text_width(label));
  Frame f;
  f.left = 10 + (has_y_title ? 20 : 0) + label_width + 8;
  f.right = width - 18;
  f.top = 34 + 18 * legend_rows(legend, f.right - f.left) + 4;
  f.bottom = height - 40;
  return f;
}

void draw_axis_titles(std::string& out, const Frame& f, int height, const std::string& x_label,
                      const std::string& y_label) {
  if (!x_label.empty()) {
    out += fmt::format(
        "<text x=\"{:.1f}\" y=\"{}\" font-size=\"12\" fill=\"{}\" "
        "text-anchor=\"middle\">{}</text>\n",
        (f.left + f.right) / 2, height - 8, kTextColor, escape_xml(x_label));
  }
  if (!y_label.empty()) {
    const double cy = (f.top + f.bottom) / 2;
    out += fmt::format(
        "<text x=\"16\" y=\"{:.1f}\" font-size=\"12\" fill=\"{}\" text-anchor=\"middle\" "
        "transform=\"rotate(-90 16 {:.1f})\">{}</text>\n",
        cy, kTextColor, cy, escape_xml(y_label));
  }
}

// Horizontal grid line and label at pixel row y.
void draw_y_tick(std::string& out, const Frame& f, double y, const std::string& label) {
  out +=
      fmt::format("<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\"/>\n",
                  f.left, y, f.right, y, kGridColor);
  out += fmt::format(
      "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"11\" fill=\"{}\" "
      "text-anchor=\"end\">{}</text>\n",
      f.left - 6, y + 4, kTextColor, escape_xml(label));
}

void draw_x_label(std::string& out, const Frame& f, double x, const std::string& label) {
  out += fmt::format(
      "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"11\" fill=\"{}\" "
      "text-anchor=\"middle\">{}</text>\n",
      x, f.bottom + 16, kTextColor, escape_xml(label));
}

void draw_axes(std::string& out, const Frame& f) {
  out += fmt::format("<path d=\"M{:.1f} {:.1f}V{:.1f}H{:.1f}\" fill=\"none\" stroke=\"{}\"/>\n",
                     f.left, f.top, f.bottom, f.right, kAxisColor);
}

void draw_no_data(std::string& out, const Frame& f) {
  out += fmt::format(
      "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"13\" fill=\"#6b7280\" "
      "text-anchor=\"middle\">no data</text>\n",
      (f.left + f.right) / 2, (f.top + f.bottom) / 2);
}

// Maps values in [lo, hi] (or their logs) onto pixels [p0, p1].
struct Scale {
  double lo, hi, p0, p1;
  bool log = false;
  double operator()(double v) const {
    const double a = log ? std::log10(lo) : lo, b = log ? std::log10(hi) : hi;
    const double t = ((log ? std::log10(v) : v) - a) / (b - a);
    return p0 + t * (p1 - p0);
  }
};

bool drawable(double x, double y, bool log_y) {
  return std::isfinite(x) && std::isfinite(y) && (!log_y || y > 0);
}

// The power of ten at or below |v| (v != 0).
double decade(double v) { return std::pow(10.0, std::floor(std::log10(std::abs(v)) + 1e-9)); }

// How many labels of `chars` characters fit along `pixels`.
int max_labels(double pixels, double chars) {
  return std::max(2, static_cast<int>(pixels / (kCharWidth * chars + 24)));
}

}  // namespace

std::string escape_xml(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

Ticks nice_ticks(double lo, double hi, int max_ticks) {
  max_ticks = std::max(max_ticks, 3);  // two ticks cannot cover a range that straddles zero
  if (hi < lo) std::swap(lo, hi);
  if (hi == lo) {
    const double pad = lo == 0 ? 1 : std::abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const double raw = (hi - lo) / (max_ticks - 1);
  double magnitude = std::pow(10.0, std::floor(std::log10(raw)) - 1);
  for (; std::isfinite(magnitude); magnitude *= 10) {
    for (double m : {1.0, 2.0, 5.0}) {
      const double step = m * magnitude;
      const double first = std::floor(lo / step + 1e-9), last = std::ceil(hi / step - 1e-9);
      if (last - first + 1 > max_ticks) continue;
      Ticks ticks;
      ticks.step = step;
      for (double k = first; k <= last; ++k) ticks.values.push_back(k == 0 ? 0.0 : k * step);
      return ticks;
    }
  }
  return Ticks{hi - lo, {lo, hi}};  // only for ranges near the largest doubles
}

std::vector<double> log_ticks(double lo, double hi) {
  std::vector<double> ticks;
  if (!(lo > 0) || !(hi >= lo) || !std::isfinite(hi)) return ticks;
  const int first = static_cast<int>(std::floor(std::log10(lo)));
  const int last = static_cast<int>(std::ceil(std::log10(hi)));
  const int decades = last - first;
  const double span = std::log10(hi / lo);
  std::vector<double> multiples = {1};
  if (span <= 1.2) {
    multiples = {1, 2, 3, 5};
  } else if (span <= 3.5) {
    multiples = {1, 2, 5};
  }
  const int stride = std::max(1, decades / 6);  // at most about 7 decade labels
  for (int e = first; e <= last; ++e) {
    for (double m : multiples) {
      if (m == 1 && (e - first) % stride != 0) continue;
      const double v =
          e >= 0 ? m * std::pow(10.0, e) : m / std::pow(10.0, -e);  // 0.3, not 0.30..04
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) ticks.push_back(v);
    }
  }
  return ticks;
}

std::vector<std::string> tick_labels(const std::vector<double>& values, double step) {
  double top = 0, finest = step;
  for (double v : values) {
    if (!std::isfinite(v) || v == 0) continue;
    top = std::max(top, std::abs(v));
    if (!(step > 0)) finest = finest > 0 ? std::min(finest, decade(v)) : decade(v);
  }
  // One scale and suffix for the whole axis, so its labels read alike.
  double scale = 1;
  std::string suffix;
  if (top >= 1e9) {
    scale = 1e9, suffix = "G";
  } else if (top >= 1e6) {
    scale = 1e6, suffix = "M";
  } else if (top >= 1e4) {
    scale = 1e3, suffix = "k";
  } else if (top > 0 && finest > 0 && finest < 1e-5) {
    const int exponent = static_cast<int>(std::floor(std::log10(top) + 1e-9));
    scale = std::pow(10.0, exponent);
    suffix = "e" + std::to_string(exponent);
  }
  std::vector<std::string> labels;
  for (double v : values) {
    const double s = (step > 0 ? step : (v != 0 ? decade(v) : 1)) / scale;
    const int decimals = std::max(0, -static_cast<int>(std::floor(std::log10(s) + 1e-9)));
    std::string text = fmt::format("{:.{}f}", v / scale, std::min(decimals, 12));
    if (text.find_first_not_of("-0.") == std::string::npos) {
      text = "0";
    } else {
      text += suffix;
    }
    labels.push_back(text);
  }
  return labels;
}

std::string series_color(std::size_t index) {
  static constexpr const char* kPalette[] = {"#2563eb", "#ea580c", "#16a34a", "#dc2626", "#9333ea",
                                             "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d"};
  return kPalette[index % (sizeof(kPalette) / sizeof(kPalette[0]))];
}

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
