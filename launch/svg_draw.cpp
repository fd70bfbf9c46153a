// The drawing pieces of the SVG charts (launch/svg_draw.h): frame, legend, axes, ticks.
#include "launch/svg_draw.h"

#include <fmt/core.h>

#include <algorithm>

#include "launch/svg_plot.h"

namespace dpt::svg {

namespace {

constexpr const char* kFont = "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif";
constexpr const char* kTextColor = "#374151";
constexpr const char* kAxisColor = "#9ca3af";

double text_width(const std::string& text) { return kCharWidth * static_cast<double>(text.size()); }

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

}  // namespace

// Short value text for hover titles.
std::string value_text(double value) { return fmt::format("{:.4g}", value); }

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

bool drawable(double x, double y, bool log_y) {
  return std::isfinite(x) && std::isfinite(y) && (!log_y || y > 0);
}

// How many labels of `chars` characters fit along `pixels`.
int max_labels(double pixels, double chars) {
  return std::max(2, static_cast<int>(pixels / (kCharWidth * chars + 24)));
}

}  // namespace dpt::svg
