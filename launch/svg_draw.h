// The pieces the charts of launch/svg_plot.h are drawn with (svg_charts.cpp): the plot frame
// and its legend, axis titles, tick lines and labels, the value-to-pixel scale. Text widths are
// estimated from character counts (no font metrics): margins, legend wrapping and tick density
// are chosen so labels do not overlap. Internal to the SVG builder.
#pragma once

#include <cmath>
#include <string>
#include <vector>

namespace dpt::svg {

constexpr double kCharWidth = 6.6;  // estimated px per character at the 11-12 px sizes used
constexpr const char* kGridColor = "#e5e7eb";

// Short value text for hover titles.
std::string value_text(double value);

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

// The opening <svg> tag and the chart's title.
void open_svg(std::string& out, const std::string& title, int width, int height);

// The legend above the plot area, wrapped to `width` px from x0; none for fewer than two items.
void draw_legend(std::string& out, const std::vector<LegendItem>& items, double x0, double width);

// Computes the plot area for a chart of `width` x `height` with the given legend and y labels.
Frame make_frame(int width, int height, const std::vector<LegendItem>& legend,
                 const std::vector<std::string>& y_labels, bool has_y_title);

void draw_axis_titles(std::string& out, const Frame& f, int height, const std::string& x_label,
                      const std::string& y_label);

// Horizontal grid line and label at pixel row y.
void draw_y_tick(std::string& out, const Frame& f, double y, const std::string& label);

void draw_x_label(std::string& out, const Frame& f, double x, const std::string& label);

void draw_axes(std::string& out, const Frame& f);

void draw_no_data(std::string& out, const Frame& f);

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

bool drawable(double x, double y, bool log_y);

// How many labels of `chars` characters fit along `pixels`.
int max_labels(double pixels, double chars);

}  // namespace dpt::svg
