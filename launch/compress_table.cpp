// measure_rows, the text table and the JSON of `dpt compress` (see compress_table.h).
#include "launch/compress_table.h"

#include <fmt/core.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "devices/error.h"

namespace dpt {
namespace {

std::string size_text(int64_t bytes) {
  if (bytes >= (int64_t{1} << 20)) return fmt::format("{:.2f} MiB", bytes / 1048576.0);
  if (bytes >= 1024) return fmt::format("{:.1f} KiB", bytes / 1024.0);
  return fmt::format("{} B", bytes);
}

// "1 860 170": thousands separated by spaces, as in the README's tables.
std::string count_text(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ' ';
    out += digits[i];
  }
  return out;
}

}  // namespace

int64_t deflated_size(const std::string& path, int64_t* file_bytes) {
  std::ifstream in(path, std::ios::binary);
  DPT_CHECK_AS(ErrorKind::kIo, in.good()) << path << ": cannot read: " << std::strerror(errno);
  const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  DPT_CHECK_AS(ErrorKind::kIo, !in.bad()) << path << ": read failed";
  if (file_bytes != nullptr) *file_bytes = static_cast<int64_t>(bytes.size());
  uLongf size = compressBound(static_cast<uLong>(bytes.size()));
  std::string out(size, '\0');
  DPT_CHECK(compress2(reinterpret_cast<Bytef*>(out.data()), &size,
                      reinterpret_cast<const Bytef*>(bytes.data()),
                      static_cast<uLong>(bytes.size()), 6) == Z_OK)
      << path << ": zlib compress2 failed";
  return static_cast<int64_t>(size);
}

std::vector<CompressRow> measure_rows(const std::vector<ModelUnderTest>& models,
                                      const InferenceBenchOptions& options, int passes) {
  DPT_CHECK(passes >= 1) << "measure_rows: passes " << passes;
  std::vector<CompressRow> rows;
  for (const ModelUnderTest& model : models) {
    CompressRow row;
    row.method = model.method;
    row.file = model.file;
    row.pruned = model.pruned;
    row.params = model.params;
    row.nonzero = model.nonzero;
    row.gzip_bytes = deflated_size(model.file, &row.file_bytes);
    row.accuracy = model.accuracy();
    rows.push_back(row);
  }
  // timings[m][p]: model m in pass p.
  std::vector<std::vector<InferenceTiming>> timings(models.size());
  for (int pass = 0; pass < passes; ++pass) {
    for (std::size_t m = 0; m < models.size(); ++m) {
      timings[m].push_back(bench_inference(models[m].forward, options));
    }
  }
  for (std::size_t m = 0; m < models.size(); ++m) {
    std::vector<double> p50, p99, rate;
    for (const InferenceTiming& t : timings[m]) {
      p50.push_back(t.p50_ms);
      p99.push_back(t.p99_ms);
      rate.push_back(t.samples_per_s);
    }
    rows[m].timing.p50_ms = percentile(p50, 0.5);
    rows[m].timing.p99_ms = percentile(p99, 0.5);
    rows[m].timing.samples_per_s = percentile(rate, 0.5);
    rows[m].timing.throughput_batch = options.throughput_batch;
  }
  return rows;
}

std::string format_table(const std::vector<CompressRow>& rows, int64_t eval_samples) {
  std::size_t width = 6;
  for (const CompressRow& row : rows) width = std::max(width, row.method.size());
  const int64_t batch = rows.empty() ? 0 : rows.front().timing.throughput_batch;
  std::string text =
      fmt::format("{:<{}}  {:>8}  {:>11}  {:>11}  {:>17}  {:>10}  {:>10}  {:>8}  {:>8}  {:>11}\n",
                  "method", width, "test acc", "params", "nonzero", "pruned", "file", "gzip'd",
                  "p50 ms", "p99 ms", fmt::format("samples/s@{}", batch));
  for (const CompressRow& row : rows) {
    text += fmt::format(
        "{:<{}}  {:>8.4f}  {:>11}  {:>11}  {:>17}  {:>10}  {:>10}  {:>8.3f}  {:>8.3f}  {:>11.0f}\n",
        row.method, width, row.accuracy, count_text(row.params), count_text(row.nonzero),
        row.pruned.empty() ? "-" : row.pruned, size_text(row.file_bytes), size_text(row.gzip_bytes),
        row.timing.p50_ms, row.timing.p99_ms, row.timing.samples_per_s);
  }
  text += fmt::format(
      "test acc over {} test samples; latency at batch 1, warm-up excluded, median of 3 "
      "interleaved passes; gzip'd: the file deflated (zlib level 6)\n",
      eval_samples);
  return text;
}

nlohmann::json rows_json(const std::vector<CompressRow>& rows, int64_t eval_samples) {
  nlohmann::json list = nlohmann::json::array();
  for (const CompressRow& row : rows) {
    list.push_back({{"method", row.method},
                    {"file", row.file},
                    {"pruned", row.pruned},
                    {"test_accuracy", row.accuracy},
                    {"params", row.params},
                    {"nonzero", row.nonzero},
                    {"file_bytes", row.file_bytes},
                    {"gzip_bytes", row.gzip_bytes},
                    {"latency_p50_ms", row.timing.p50_ms},
                    {"latency_p99_ms", row.timing.p99_ms},
                    {"throughput_batch", row.timing.throughput_batch},
                    {"samples_per_s", row.timing.samples_per_s}});
  }
  return {{"eval_samples", eval_samples}, {"rows", list}};
}

}  // namespace dpt
