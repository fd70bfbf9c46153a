// MetricsWriter: JSON lines via nlohmann::json; every write is checked and flushed.
#include "launch/metrics_writer.h"

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "devices/error.h"

namespace dpt {

namespace {

// The lines of `path` whose "step" is at most `step` (unparsable lines are dropped).
std::string records_up_to(const std::string& path, int64_t step) {
  std::ifstream in(path);
  std::string kept, line;
  while (std::getline(in, line)) {
    const nlohmann::json record = nlohmann::json::parse(line, nullptr, false);
    if (record.is_object() && record.contains("step") && record["step"].is_number_integer() &&
        record["step"].get<int64_t>() <= step) {
      kept += line + "\n";
    }
  }
  return kept;
}

}  // namespace

void write_json_file(const std::string& path, const nlohmann::json& value) {
  const std::string text = value.dump(2) + "\n";
  write_file_atomically(path, text.data(), text.size());
}

MetricsWriter::MetricsWriter(const std::string& path, int64_t keep_up_to_step) : path_(path) {
  if (keep_up_to_step >= 0) {
    const std::string kept = records_up_to(path, keep_up_to_step);
    write_file_atomically(path, kept.data(), kept.size());
  }
  out_.open(path, keep_up_to_step >= 0 ? std::ios::app : std::ios::trunc);
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
  const PhaseMs& t = p.time_ms;
  record["time_ms"] = {{"data", t.data}, {"forward", t.forward}, {"backward", t.backward},
                       {"sync", t.sync}, {"norm", t.norm},       {"optimizer", t.optimizer}};
  if (p.loss_scale > 0) {  // fp16 loss scaling
    record["loss_scale"] = p.loss_scale;
    record["loss_scale_skipped"] = p.loss_scale_skipped;
  }
  write_line(record.dump());
}

void MetricsWriter::write_ranks(const RankWindow& w) {
  nlohmann::json record = {
      {"kind", "ranks"},         {"step", w.last_step},  {"first_step", w.first_step},
      {"step_ms", w.compute_ms}, {"wait_ms", w.wait_ms}, {"slowest", w.slowest},
      {"ratio", w.ratio}};
  write_line(record.dump());
}

void MetricsWriter::write_balance(const BalanceDecision& d) {
  nlohmann::json record = {{"kind", "balance"},          {"step", d.last_step},
                           {"first_step", d.first_step}, {"samples_per_s", d.samples_per_s},
                           {"shares", d.shares},         {"previous", d.previous}};
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
