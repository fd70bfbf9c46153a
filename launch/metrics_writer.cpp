// MetricsWriter: JSON lines via nlohmann::json; every write is checked and flushed.
#include "launch/metrics_writer.h"

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "devices/error.h"

namespace dpt {

MetricsWriter::MetricsWriter(const std::string& path) : path_(path), out_(path, std::ios::trunc) {
  DPT_CHECK_AS(ErrorKind::kIo, out_.good())
      << path << ": cannot open for writing: " << std::strerror(errno);
}

void MetricsWriter::write_train(const TrainProgress& p) {
  nlohmann::json record = {{"kind", "train"},
                           {"step", p.step},
                           {"epoch", p.epoch},
                           {"loss", p.loss},
                           {"lr", p.lr},
                           {"samples_per_s", p.samples_per_s},
                           {"grad_norm", p.grad_norm},
                           {"elapsed_s", p.elapsed_s}};
  write_line(record.dump());
}

void MetricsWriter::write_eval(const EvalResult& r) {
  nlohmann::json record = {{"kind", "eval"},
                           {"step", r.step},
                           {"epoch", r.epoch},
                           {"test_loss", r.loss},
                           {"test_accuracy", r.accuracy},
                           {"samples", r.samples}};
  write_line(record.dump());
}

void MetricsWriter::write_line(const std::string& line) {
  out_ << line << '\n';
  out_.flush();
  DPT_CHECK_AS(ErrorKind::kIo, out_.good()) << path_ << ": write failed: " << std::strerror(errno);
}

}  // namespace dpt
