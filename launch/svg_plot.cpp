// The SVG builder's text and axis helpers (launch/svg_plot.h): XML escaping, nice linear and
// log ticks, tick labels and the series colours. The charts are in svg_charts.cpp.
#include "launch/svg_plot.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>

namespace dpt {

namespace {

// The power of ten at or below |v| (v != 0).
double decade(double v) { return std::pow(10.0, std::floor(std::log10(std::abs(v)) + 1e-9)); }

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

}  // namespace dpt
