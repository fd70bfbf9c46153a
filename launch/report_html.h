// The pieces of the report page (build_report_html in launch/report.h, report_html.cpp): series
// of (step, value) points from metrics.jsonl, tables, notes and charts (report_parts.cpp), and the
// chart sections: training curves and other metrics (report_curves.cpp), step-time split and
// per-rank times (report_timing.cpp). Each section appends its HTML to `html`. Internal to the
// report.
#pragma once

#include <string>
#include <vector>

#include "launch/report.h"
#include "launch/svg_plot.h"

namespace dpt::report_page {

struct Points {
  std::vector<double> x, y;
};

// (step, key * scale) of every record of `kind` that has `key`.
Points points(const MetricsLog& log, const std::string& kind, const std::string& key,
              double scale = 1);

// The last finite value (NaN when none).
double last_finite(const std::vector<double>& values);

// A line chart series of the points.
Series series(const std::string& name, const Points& p, bool markers = false);

// `text` escaped for HTML.
std::string esc(const std::string& text);

// A table with a header row; every cell is escaped. `cls`: the table's CSS classes.
void table(std::string& html, const std::vector<std::string>& head,
           const std::vector<std::vector<std::string>>& body, const std::string& cls = "");

// A grey italic line saying why something is absent.
void empty_note(std::string& html, const std::string& text);

// One chart of a section's grid.
void chart(std::string& html, const std::string& svg);

// A line chart over steps: x from 0 to the run's last step.
LineChartSpec line_spec(const MetricsLog& log, const std::string& title,
                        const std::string& y_label);

// The sections of the page, in page order.
void curves_section(std::string& html, const MetricsLog& log);
void step_time_section(std::string& html, const MetricsLog& log);
void ranks_section(std::string& html, const MetricsLog& log);
void other_section(std::string& html, const MetricsLog& log);

}  // namespace dpt::report_page
