// The run report (launch/report, launch/svg_plot): tick choice and labels on known inputs, XML
// escaping, well-formed SVG for ordinary, empty and hostile input, metrics.jsonl parsing with bad
// lines, every metric key of a synthetic log on the page, the "not recorded" sections, benchmark
// tables, and load errors naming the path.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "devices/error.h"
#include "launch/report.h"
#include "launch/svg_plot.h"
#include "temp_dir.h"

namespace dpt {
namespace {

// Minimal XML check: tags balance and nest, attribute values are quoted, and text holds no raw
// '<' or bare '&'. Returns "" when well-formed, else what is wrong and where.
std::string xml_problem(const std::string& xml) {
  std::vector<std::string> open;
  std::size_t i = 0;
  while (i < xml.size()) {
    if (xml[i] == '&') {
      const std::size_t end = xml.find(';', i);
      const std::string entity = xml.substr(i, end == std::string::npos ? 8 : end - i + 1);
      if (entity != "&amp;" && entity != "&lt;" && entity != "&gt;" && entity != "&quot;" &&
          entity != "&#39;") {
        return "bad entity at " + std::to_string(i) + ": " + entity;
      }
    }
    if (xml[i] != '<') {
      ++i;
      continue;
    }
    const std::size_t end = xml.find('>', i);
    if (end == std::string::npos) return "unterminated tag at " + std::to_string(i);
    const std::string tag = xml.substr(i + 1, end - i - 1);
    if (tag.empty() || tag[0] == ' ') return "bad tag at " + std::to_string(i);
    if (tag[0] == '/') {
      if (open.empty() || open.back() != tag.substr(1)) {
        return "</" + tag.substr(1) + "> closes " + (open.empty() ? "nothing" : open.back());
      }
      open.pop_back();
    } else {
      const std::string name = tag.substr(0, tag.find_first_of(" /"));
      // Attributes: name="value" pairs, quotes balanced, no '<' inside.
      if (std::count(tag.begin(), tag.end(), '"') % 2 != 0) return "unbalanced quotes: " + tag;
      if (tag.find('<') != std::string::npos) return "'<' inside tag: " + tag;
      if (tag.back() != '/') open.push_back(name);
    }
    i = end + 1;
  }
  return open.empty() ? "" : "unclosed <" + open.back() + ">";
}

// Every <svg>...</svg> element of `html`.
std::vector<std::string> svgs(const std::string& html) {
  std::vector<std::string> found;
  for (std::size_t at = html.find("<svg"); at != std::string::npos; at = html.find("<svg", at)) {
    const std::size_t end = html.find("</svg>", at);
    if (end == std::string::npos) break;
    found.push_back(html.substr(at, end + 6 - at));
    at = end;
  }
  return found;
}

TEST(SvgPlot, XmlCheckerRejectsBrokenMarkup) {
  EXPECT_EQ(xml_problem("<svg><g><line x=\"1\"/></g></svg>"), "");
  EXPECT_NE(xml_problem("<svg><g></svg>"), "");
  EXPECT_NE(xml_problem("<svg><text>a < b</text></svg>"), "");
  EXPECT_NE(xml_problem("<svg><text>a & b</text></svg>"), "");
  EXPECT_NE(xml_problem("<svg x=\"1></svg>"), "");
}

TEST(SvgPlot, EscapesMarkupCharacters) {
  EXPECT_EQ(escape_xml("a<b&c>d\"e'f"), "a&lt;b&amp;c&gt;d&quot;e&#39;f");
  EXPECT_EQ(escape_xml("plain"), "plain");
}

TEST(SvgPlot, NiceTicksOnKnownInputs) {
  const Ticks unit = nice_ticks(0, 1, 6);
  EXPECT_DOUBLE_EQ(unit.step, 0.2);
  ASSERT_EQ(unit.values.size(), 6u);
  EXPECT_NEAR(unit.values[3], 0.6, 1e-12);
  EXPECT_EQ(nice_ticks(0, 1, 5).values, (std::vector<double>{0, 0.5, 1}));
  EXPECT_EQ(nice_ticks(50, 936, 6).values, (std::vector<double>{0, 200, 400, 600, 800, 1000}));
  EXPECT_EQ(nice_ticks(-3, 7, 6).values, (std::vector<double>{-5, 0, 5, 10}));
  const Ticks accuracy = nice_ticks(0.81, 0.87, 5);
  EXPECT_DOUBLE_EQ(accuracy.step, 0.02);
  ASSERT_EQ(accuracy.values.size(), 5u);
  EXPECT_NEAR(accuracy.values.front(), 0.80, 1e-12);
  EXPECT_NEAR(accuracy.values.back(), 0.88, 1e-12);
  const Ticks flat = nice_ticks(5, 5, 5);  // widened around the value
  EXPECT_LT(flat.values.front(), 5);
  EXPECT_GT(flat.values.back(), 5);
}

TEST(SvgPlot, NiceTicksCoverTheRangeWithinTheLimit) {
  for (double lo : {-1234.5, -1.0, 0.0, 3e-7, 0.9, 42.0}) {
    for (double span : {1e-6, 0.03, 1.0, 7.0, 999.0, 2.5e6}) {
      for (int max_ticks : {3, 4, 5, 8, 12}) {
        const Ticks t = nice_ticks(lo, lo + span, max_ticks);
        ASSERT_GE(t.values.size(), 2u);
        EXPECT_LE(static_cast<int>(t.values.size()), max_ticks) << lo << " " << span;
        EXPECT_LE(t.values.front(), lo + 1e-9 * span);
        EXPECT_GE(t.values.back(), lo + span - 1e-9 * span);
        const double mantissa = t.step / std::pow(10.0, std::floor(std::log10(t.step)));
        EXPECT_TRUE(std::abs(mantissa - 1) < 1e-9 || std::abs(mantissa - 2) < 1e-9 ||
                    std::abs(mantissa - 5) < 1e-9)
            << t.step;
      }
    }
  }
}

TEST(SvgPlot, LogTicks) {
  EXPECT_EQ(log_ticks(0.25, 2.4), (std::vector<double>{0.3, 0.5, 1, 2}));
  EXPECT_EQ(log_ticks(1e-3, 10), (std::vector<double>{1e-3, 1e-2, 1e-1, 1, 10}));
  EXPECT_TRUE(log_ticks(0, 1).empty());
}

using Labels = std::vector<std::string>;

TEST(SvgPlot, TickLabels) {
  EXPECT_EQ(tick_labels({0, 0.2, 0.4, 0.6000000000000001}, 0.2),
            (Labels{"0", "0.2", "0.4", "0.6"}));
  EXPECT_EQ(tick_labels({0.8, 0.85, 0.9}, 0.05), (Labels{"0.80", "0.85", "0.90"}));
  EXPECT_EQ(tick_labels({0, 400, 800, 1200}, 400), (Labels{"0", "400", "800", "1200"}));
  EXPECT_EQ(tick_labels({0, 5000, 10000, 15000}, 5000), (Labels{"0", "5k", "10k", "15k"}));
  EXPECT_EQ(tick_labels({1.2e6, 1.22e6, 1.24e6}, 2e4), (Labels{"1.20M", "1.22M", "1.24M"}));
  EXPECT_EQ(tick_labels({0, 2e-6, 4e-6, 1e-5}, 2e-6), (Labels{"0", "0.2e-5", "0.4e-5", "1.0e-5"}));
  EXPECT_EQ(tick_labels({0.0002, 0.001}, 0.0002), (Labels{"0.0002", "0.0010"}));
  EXPECT_EQ(tick_labels({-1e-17, -2.5}, 0.5), (Labels{"0", "-2.5"}));
  // A log axis: each label keeps its own digits.
  EXPECT_EQ(tick_labels({0.05, 0.3, 1, 20}, 0), (Labels{"0.05", "0.3", "1", "20"}));
}

TEST(SvgPlot, ChartsAreWellFormedWithHostileNames) {
  LineChartSpec line;
  line.title = "loss <&> \"quoted\"";
  line.x_label = "step";
  line.y_label = "a<b";
  line.log_y = true;
  Series a{"train <loss>", {0, 1, 2, 3}, {2.0, NAN, 0.5, 0.25}};
  Series b{"test & eval", {1, 3}, {1.0, -1.0}, true, true};
  line.series = {a, b};
  const std::string svg = line_chart_svg(line);
  EXPECT_EQ(xml_problem(svg), "") << svg;
  EXPECT_NE(svg.find("train &lt;loss&gt;"), std::string::npos);
  EXPECT_EQ(svg.find("<loss>"), std::string::npos);
  EXPECT_NE(svg.find("<circle"), std::string::npos);  // markers of the sparse series

  BarChartSpec bars;
  bars.title = "split";
  bars.categories = {"10", "20", "<30>"};
  bars.series = {{"forward", {1, 2, 3}}, {"backward & loss", {2, NAN, 1}}};
  const std::string bar_svg = bar_chart_svg(bars);
  EXPECT_EQ(xml_problem(bar_svg), "") << bar_svg;
  std::size_t rects = 0;
  for (std::size_t at = bar_svg.find("<rect"); at != std::string::npos;
       at = bar_svg.find("<rect", at + 1)) {
    ++rects;
  }
  EXPECT_EQ(rects, 5u + 2u);  // five finite bars plus two legend swatches
  bars.stacked = false;
  EXPECT_EQ(xml_problem(bar_chart_svg(bars)), "");

  const std::string empty = line_chart_svg(LineChartSpec{});
  EXPECT_EQ(xml_problem(empty), "");
  EXPECT_NE(empty.find("no data"), std::string::npos);
  EXPECT_NE(bar_chart_svg(BarChartSpec{}).find("no data"), std::string::npos);
}

TEST(SvgPlot, LineBreaksAtMissingPoints) {
  LineChartSpec spec;
  spec.series = {Series{"s", {0, 1, 2, 3, 4}, {1, 2, NAN, 3, 4}}};
  const std::string svg = line_chart_svg(spec);
  const std::size_t d = svg.find("stroke-linejoin");
  const std::size_t start = svg.rfind("<path d=\"", d);
  const std::string path = svg.substr(start, d - start);
  EXPECT_EQ(std::count(path.begin(), path.end(), 'M'), 2) << path;
  EXPECT_EQ(std::count(path.begin(), path.end(), 'L'), 2) << path;
}

constexpr const char* kMetrics =
    R"({"kind":"train","step":10,"epoch":0,"loss":2.5,"lr":0.001,"samples_per_s":9000,"grad_norm":3.5,"elapsed_s":1.0,"time_ms":{"data":0.1,"forward":1.5,"backward":2.5,"sync":0.3,"norm":0.05,"optimizer":0.4}}
{"kind":"train","step":20,"epoch":0,"loss":1.25,"lr":0.002,"samples_per_s":9500,"grad_norm":null,"elapsed_s":2.0,"time_ms":{"data":0.1,"forward":1.4,"backward":2.4,"sync":0.3,"norm":0.05,"optimizer":0.4}}
not json at all

{"kind":"eval","step":20,"epoch":0,"test_loss":0.75,"test_accuracy":0.8125,"samples":1000}
{"kind":"ranks","step":20,"first_step":10,"step_ms":[4.5,6.25],"wait_ms":[1.75,0.5],"slowest":1,"ratio":1.2}
[1, 2, 3]
{"kind":"custom","step":20,"weird_key_x":7,"note":"a<b&c"}
{"kind":"train","step":30,"epoch":1,"loss":0.5,"lr":0.001,"samples_per_s":9
)";

TEST(Report, ParsesRecordsAndCountsBadLines) {
  const MetricsLog log = parse_metrics(kMetrics);
  EXPECT_EQ(log.lines, 8);
  EXPECT_EQ(log.bad_lines, (std::vector<int64_t>{3, 7, 9}));
  ASSERT_EQ(log.records.size(), 5u);
  EXPECT_EQ(log.records[0].kind, "train");
  EXPECT_DOUBLE_EQ(log.records[0].numbers.at("time_ms.backward"), 2.5);
  EXPECT_TRUE(std::isnan(log.records[1].numbers.at("grad_norm")));
  EXPECT_EQ(log.records[3].arrays.at("wait_ms"), (std::vector<double>{1.75, 0.5}));
  EXPECT_EQ(log.records[4].texts.at("note"), "a<b&c");
}

TEST(Report, KeyStatistics) {
  const std::vector<MetricKeyStats> stats = metric_key_stats(parse_metrics(kMetrics));
  auto find = [&](const std::string& kind, const std::string& key) {
    for (const MetricKeyStats& s : stats) {
      if (s.kind == kind && s.key == key) return s;
    }
    ADD_FAILURE() << kind << "." << key << " missing";
    return MetricKeyStats{};
  };
  EXPECT_EQ(stats.size(), 3u + 5u + 6u + 13u);  // keys of custom, eval, ranks, train
  EXPECT_EQ(stats.front().kind, "custom");
  const MetricKeyStats loss = find("train", "loss");
  EXPECT_EQ(loss.count, 2);
  EXPECT_EQ(loss.min, 1.25);
  EXPECT_EQ(loss.max, 2.5);
  EXPECT_EQ(loss.last, "1.25");
  const MetricKeyStats norm = find("train", "grad_norm");  // null is counted, not ranged
  EXPECT_EQ(norm.count, 2);
  EXPECT_EQ(norm.max, 3.5);
  EXPECT_EQ(norm.last, "null");
  const MetricKeyStats wait = find("ranks", "wait_ms");
  EXPECT_EQ(wait.min, 0.5);
  EXPECT_EQ(wait.max, 1.75);
  EXPECT_EQ(wait.last, "[1.75, 0.5]");
  const MetricKeyStats note = find("custom", "note");
  EXPECT_EQ(note.last, "a<b&c");
  EXPECT_GT(note.min, note.max);
}

TEST(Report, PageHasEveryMetricKeyAndWellFormedSvg) {
  ReportInput input;
  input.run_dir = "/runs/<x>&y";
  input.metrics = parse_metrics(kMetrics);
  const std::string html = build_report_html(input);
  for (const char* key : {"step",
                          "epoch",
                          "loss",
                          "lr",
                          "samples_per_s",
                          "grad_norm",
                          "elapsed_s",
                          "time_ms.data",
                          "time_ms.forward",
                          "time_ms.backward",
                          "time_ms.sync",
                          "time_ms.norm",
                          "time_ms.optimizer",
                          "test_loss",
                          "test_accuracy",
                          "samples",
                          "first_step",
                          "step_ms",
                          "wait_ms",
                          "slowest",
                          "ratio",
                          "weird_key_x",
                          "note"}) {
    EXPECT_NE(html.find(std::string("<td>") + key + "</td>"), std::string::npos) << key;
  }
  EXPECT_NE(html.find("3 of 8 lines of metrics.jsonl did not parse"), std::string::npos);
  EXPECT_NE(html.find("(lines 3, 7, 9)"), std::string::npos);
  EXPECT_NE(html.find("/runs/&lt;x&gt;&amp;y"), std::string::npos);
  EXPECT_EQ(html.find("<x>"), std::string::npos);
  EXPECT_NE(html.find("a&lt;b&amp;c"), std::string::npos);
  EXPECT_EQ(html.find("not recorded"), std::string::npos);  // both optional sections present
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  const std::vector<std::string> charts = svgs(html);
  EXPECT_GE(charts.size(), 9u);  // 5 curves, step split, 3 per-rank, other metrics
  for (const std::string& svg : charts) EXPECT_EQ(xml_problem(svg), "") << svg;
  // The per-rank table: rank 1's waiting share is 0.5 / (6.25 + 0.5).
  EXPECT_NE(html.find("<td>7.4%</td>"), std::string::npos);
}

TEST(Report, OptionalSectionsSayNotRecorded) {
  ReportInput input;
  input.run_dir = "run";
  input.metrics = parse_metrics(
      R"({"kind":"train","step":1,"epoch":0,"loss":2,"lr":0.1,"samples_per_s":5,"grad_norm":1,"elapsed_s":0.5})");
  const std::string html = build_report_html(input);
  EXPECT_NE(html.find("not recorded: no train record has a"), std::string::npos);
  EXPECT_NE(html.find("not recorded (single process)"), std::string::npos);
  for (const std::string& svg : svgs(html)) EXPECT_EQ(xml_problem(svg), "");
}

TEST(Report, RunNameFromConfigIsEscaped) {
  ReportInput input;
  input.run_dir = "run";
  input.config_text = R"(name: "a<b&c>d"
    model { input_size: 4 layer { dense { units: 3 } } }
    data { train_path: "t.h5" })";
  const std::string html = build_report_html(input);
  EXPECT_NE(html.find("<h1>a&lt;b&amp;c&gt;d</h1>"), std::string::npos);
  EXPECT_NE(html.find("<title>dpt report: a&lt;b&amp;c&gt;d</title>"), std::string::npos);
  EXPECT_EQ(html.find("a<b&c>d"), std::string::npos);
  EXPECT_NE(html.find("4 → dense 3"), std::string::npos);
  EXPECT_NE(html.find("<td>15</td>"), std::string::npos);  // 4*3 weights + 3 biases

  input.config_text = "model { bogus: 1 }";
  const std::string broken = build_report_html(input);
  EXPECT_NE(broken.find("bogus"), std::string::npos);  // the parse error is shown
}

TEST(Report, BenchmarkTables) {
  BenchmarkTable table;
  EXPECT_FALSE(parse_benchmark("a.json", R"({"rows":[{"a":1}]})", table));
  EXPECT_FALSE(parse_benchmark("a.json", "{not json", table));
  ASSERT_TRUE(parse_benchmark(
      "b.json", R"({"benchmark":"gemm","host":"x","rows":[{"n":1,"ms":0.5},{"n":2,"gflops":3}]})",
      table));
  EXPECT_EQ(table.title, "gemm");
  EXPECT_EQ(table.rows_key, "rows");
  EXPECT_EQ(table.columns, (std::vector<std::string>{"ms", "n", "gflops"}));
  EXPECT_EQ(table.rows, (std::vector<std::vector<std::string>>{{"0.5", "1", ""}, {"", "2", "3"}}));
  EXPECT_EQ(table.fields, (std::vector<std::pair<std::string, std::string>>{{"host", "x"}}));

  // bench comm's shape: rows under "sizes", nested results flattened into dotted columns.
  ASSERT_TRUE(parse_benchmark("c.json", R"({"benchmark":"all_reduce","memcpy":{"reps":5},
      "sizes":[{"bytes":4096,"results":{"ring":{"time_us":12.5}}}]})",
                              table));
  EXPECT_EQ(table.rows_key, "sizes");
  EXPECT_EQ(table.columns, (std::vector<std::string>{"bytes", "results.ring.time_us"}));
  EXPECT_EQ(table.fields, (std::vector<std::pair<std::string, std::string>>{{"memcpy.reps", "5"}}));
}

class ReportFiles : public testing::TempDirTest {
 protected:
  ReportFiles() : TempDirTest("report_test_") {}
  void write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/" + name) << text;
  }
};

TEST_F(ReportFiles, MissingRunDirOrMetricsIsADataError) {
  try {
    load_report_input(dir_ + "/absent");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kData);
    EXPECT_NE(std::string(e.what()).find(dir_ + "/absent"), std::string::npos) << e.what();
  }
  try {
    load_report_input(dir_);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kData);
    EXPECT_NE(std::string(e.what()).find(dir_ + "/metrics.jsonl"), std::string::npos) << e.what();
  }
}

TEST_F(ReportFiles, WritesThePageWithBenchmarksAndNotes) {
  write("metrics.jsonl", kMetrics);
  write("bench.json", R"({"benchmark":"step time","rows":[{"phase":"forward","ms":1.5}]})");
  write("other.json", R"({"not":"a benchmark"})");
  write("broken.json", "{");
  const std::string out = dir_ + "/page.html";
  write_report(dir_, out);
  std::ifstream in(out);
  const std::string html((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(html.find("<h3>step time <span class=\"file\">bench.json</span></h3>"),
            std::string::npos);
  EXPECT_NE(html.find("<td>forward</td>"), std::string::npos);
  EXPECT_NE(html.find("broken.json: not valid JSON, skipped"), std::string::npos);
  EXPECT_EQ(html.find("other.json"), std::string::npos);
  EXPECT_NE(html.find("no config.prototxt"), std::string::npos);
  EXPECT_EQ(html.substr(html.size() - 8), "</html>\n");
}

}  // namespace
}  // namespace dpt
