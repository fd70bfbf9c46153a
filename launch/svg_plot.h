// A small SVG chart builder for `dpt report`: line charts (linear or log y) and bar charts
// (stacked or grouped), with axes on nice ticks, a title, axis labels and a legend. The output is
// a self-contained <svg> element (no scripts, no fonts, no links) sized by a viewBox so it scales
// to its container. Not a general plotting library: just what the report draws.
#pragma once

#include <cmath>
#include <string>
#include <vector>

namespace dpt {

// Text made safe for XML/HTML content and attribute values: & < > " ' become entities.
std::string escape_xml(const std::string& text);

// Axis ticks covering [lo, hi]: first value <= lo, last >= hi, evenly spaced by step, where step
// is 1, 2 or 5 times a power of ten, the smallest such step giving at most max_ticks values
// (at least 3: two cannot always cover a range around zero). lo == hi is widened around the
// value. Both must be finite.
struct Ticks {
  double step = 1;
  std::vector<double> values;
};
Ticks nice_ticks(double lo, double hi, int max_ticks);

// Ticks for a log axis over [lo, hi] (0 < lo <= hi): powers of ten, with 2x and 5x multiples
// when the range spans few decades. Values lie inside [lo, hi]; may be fewer than two.
std::vector<double> log_ticks(double lo, double hi);

// Labels for one axis's ticks: as many decimals as `step` needs (step 0: a log axis, each label
// with its own decade's digits), and one scale for the whole axis: k, M, G suffixes from 1e4,
// a shared power of ten below 1e-5 steps. ("0.25", "0.0004", "15k", "1.24M", "0.8e-5").
std::vector<std::string> tick_labels(const std::vector<double>& values, double step);

// One line of a line chart. Points with a non-finite x or y (or y <= 0 on a log axis) are left
// out and break the line there.
struct Series {
  std::string name;
  std::vector<double> x;
  std::vector<double> y;
  bool markers = false;  // a dot with a hover title at each point (for sparse series)
  bool dashed = false;
};

struct LineChartSpec {
  std::string title;
  std::string x_label;
  std::string y_label;
  bool log_y = false;
  double x_min = NAN, x_max = NAN;  // the x axis range; NaN: the data's
  std::vector<Series> series;
  int width = 560;
  int height = 320;
};

// The chart as one <svg> element; a chart with no drawable point says "no data".
std::string line_chart_svg(const LineChartSpec& spec);

// One bar series: values[i] belongs to category i; non-finite values draw nothing.
struct BarSeries {
  std::string name;
  std::vector<double> values;
};

struct BarChartSpec {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<std::string> categories;
  std::vector<BarSeries> series;
  bool stacked = true;  // false: the series' bars side by side in each category
  int width = 560;
  int height = 320;
};

// The chart as one <svg> element; the y axis starts at zero.
std::string bar_chart_svg(const BarChartSpec& spec);

// The colour of series i ("#1f77b4", ...), shared by charts and HTML legends.
std::string series_color(std::size_t index);

}  // namespace dpt
