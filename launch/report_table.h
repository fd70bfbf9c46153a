// The rows of `dpt bench report`: one measured value (or "n/a" and the reason) with its unit and a
// note, grouped by section, rendered as a printed table, CSV and JSON from the same rows so the
// three never disagree.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace dpt {

struct ReportRow {
  std::string section;          // "compute", "communication", "training", ...
  std::string metric;           // "GEMM at the model's shapes"
  std::optional<double> value;  // absent: not measured, `note` says why
  std::string unit;             // "GFLOP/s", "%", "ms", ...
  std::string note;             // what it is relative to, or why it is n/a
};

class ReportTable {
 public:
  void add(std::string section, std::string metric, double value, std::string unit,
           std::string note = "");
  void add_na(std::string section, std::string metric, std::string reason);
  const std::vector<ReportRow>& rows() const { return rows_; }

  // Sections in first-seen order, each with a heading line and aligned rows.
  std::string text() const;
  // section,metric,value,unit,note with RFC 4180 quoting; "n/a" rows leave value empty.
  std::string csv() const;
  // [{"section":..., "metric":..., "value": number or null, "unit":..., "note":...}, ...]
  nlohmann::json json() const;

 private:
  std::vector<ReportRow> rows_;
};

// Value formatted with about four significant digits ("183.2", "0.0123", "16736").
std::string format_value(double value);

}  // namespace dpt
