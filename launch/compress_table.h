// The before/after table of `dpt compress`: one row per model (the original, each pruned or
// quantized version) with test accuracy, parameters, size on disk and inference speed. A model of
// any format enters through ModelUnderTest (a file, an accuracy function and a forward function),
// so adding a method is adding a row. Formatting only; the caller prints.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "launch/inference_bench.h"

namespace dpt {

// A model to measure, whatever its format.
struct ModelUnderTest {
  std::string method;  // row label, e.g. "fp32 original", "unstructured 80% + fine-tune"
  std::string file;    // its weights file (size measured as written)
  int64_t params = 0;  // parameters it stores
  int64_t nonzero = 0;
  std::string pruned;                // what was pruned, e.g. "80.0% of weights"; "" for none
  std::function<double()> accuracy;  // test accuracy over the measured samples
  ForwardFn forward;                 // one forward pass of a batch of test inputs
};

struct CompressRow {
  std::string method, file, pruned;
  double accuracy = 0.0;
  int64_t params = 0, nonzero = 0;
  int64_t file_bytes = 0;  // size of `file`
  int64_t gzip_bytes = 0;  // size of `file` after zlib deflate (level 6), computed in memory
  InferenceTiming timing;
};

// Measures every model: accuracy and file sizes, then inference timing in `passes` passes that
// each time every model once, in order; each timing figure is the median over the passes, so load
// from other processes falls on all rows alike. Throws kIo when a file is unreadable.
std::vector<CompressRow> measure_rows(const std::vector<ModelUnderTest>& models,
                                      const InferenceBenchOptions& options, int passes = 3);

// The rows as an aligned text table, one line per row after a header, each line ending in '\n'.
// `eval_samples` is the number of test samples the accuracies are over.
std::string format_table(const std::vector<CompressRow>& rows, int64_t eval_samples);

// The rows as JSON: {"eval_samples": n, "rows": [{"method": ..., "accuracy": ..., ...}]}.
nlohmann::json rows_json(const std::vector<CompressRow>& rows, int64_t eval_samples);

// zlib deflate (level 6) size of a file's bytes; throws kIo naming the file when unreadable.
int64_t deflated_size(const std::string& path, int64_t* file_bytes = nullptr);

}  // namespace dpt
