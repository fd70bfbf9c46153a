// The building blocks of the report page (launch/report_html.h): points from metrics.jsonl,
// line chart series and specs, escaped tables and notes.
#include <algorithm>
#include <cmath>

#include "launch/report_html.h"

namespace dpt::report_page {

namespace {

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

}  // namespace

std::string esc(const std::string& text) { return escape_xml(text); }

// (step, key * scale) of every record of `kind` that has `key`.
Points points(const MetricsLog& log, const std::string& kind, const std::string& key,
              double scale) {
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

Series series(const std::string& name, const Points& p, bool markers) {
  Series s;
  s.name = name;
  s.x = p.x;
  s.y = p.y;
  s.markers = markers;
  return s;
}

void table(std::string& html, const std::vector<std::string>& head,
           const std::vector<std::vector<std::string>>& body, const std::string& cls) {
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

}  // namespace dpt::report_page
