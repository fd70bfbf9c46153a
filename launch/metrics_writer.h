// metrics.jsonl: one JSON object per line, appended and flushed as the run goes, so a crashed run
// keeps every record up to the crash. Records: {"kind":"train",...} and {"kind":"eval",...}.
#pragma once

#include <fstream>
#include <string>

#include "launch/trainer.h"

namespace dpt {

class MetricsWriter {
 public:
  // Opens (truncates) `path`; throws kIo naming it when that fails.
  explicit MetricsWriter(const std::string& path);
  void write_train(const TrainProgress& progress);
  void write_eval(const EvalResult& result);

 private:
  void write_line(const std::string& line);
  std::string path_;
  std::ofstream out_;
};

}  // namespace dpt
