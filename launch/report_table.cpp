// Rendering of the bench report rows (launch/report_table.h).
#include "launch/report_table.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>

namespace dpt {
namespace {

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

}  // namespace

std::string format_value(double value) {
  if (!std::isfinite(value)) return fmt::format("{}", value);
  const double magnitude = std::fabs(value);
  if (magnitude >= 1000 || value == std::floor(value)) return fmt::format("{:.0f}", value);
  if (magnitude >= 100) return fmt::format("{:.1f}", value);
  return fmt::format("{:.3g}", value);
}

void ReportTable::add(std::string section, std::string metric, double value, std::string unit,
                      std::string note) {
  rows_.push_back({std::move(section), std::move(metric), value, std::move(unit), std::move(note)});
}

void ReportTable::add_na(std::string section, std::string metric, std::string reason) {
  rows_.push_back({std::move(section), std::move(metric), std::nullopt, "", std::move(reason)});
}

std::string ReportTable::text() const {
  std::size_t width = 0;
  for (const ReportRow& row : rows_) width = std::max(width, row.metric.size());
  std::string out;
  std::vector<std::string> seen;
  for (const ReportRow& row : rows_) {
    if (std::find(seen.begin(), seen.end(), row.section) != seen.end()) continue;
    seen.push_back(row.section);
    out += fmt::format("{}{}\n", out.empty() ? "" : "\n", row.section);
    for (const ReportRow& r : rows_) {
      if (r.section != row.section) continue;
      const std::string value = r.value ? format_value(*r.value) + " " + r.unit : "n/a";
      out += fmt::format("  {:<{}}  {:>16}", r.metric, width, value);
      out += r.note.empty() ? "\n" : fmt::format("  {}\n", r.note);
    }
  }
  return out;
}

std::string ReportTable::csv() const {
  std::string out = "section,metric,value,unit,note\n";
  for (const ReportRow& r : rows_) {
    out += fmt::format("{},{},{},{},{}\n", csv_field(r.section), csv_field(r.metric),
                       r.value ? fmt::format("{}", *r.value) : "", csv_field(r.unit),
                       csv_field(r.note));
  }
  return out;
}

nlohmann::json ReportTable::json() const {
  nlohmann::json rows = nlohmann::json::array();
  for (const ReportRow& r : rows_) {
    rows.push_back({{"section", r.section},
                    {"metric", r.metric},
                    {"value", r.value ? nlohmann::json(*r.value) : nlohmann::json(nullptr)},
                    {"unit", r.unit},
                    {"note", r.note}});
  }
  return rows;
}

}  // namespace dpt
