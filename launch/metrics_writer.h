// metrics.jsonl: one JSON object per line, appended and flushed as the run goes, so a crashed run
// keeps every record up to the crash. Records: {"kind":"train",...}, {"kind":"eval",...},
// {"kind":"ranks",...} and {"kind":"balance",...}. Train records of a run with fp16 loss scaling
// also carry "loss_scale" (the next step's) and "loss_scale_skipped" (steps skipped so far).
#pragma once

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "launch/balance.h"
#include "launch/trainer.h"

namespace dpt {

// Writes `value` (indented) to `path` atomically; the benchmarks' --json. Throws kIo.
void write_json_file(const std::string& path, const nlohmann::json& value);

class MetricsWriter {
 public:
  // Opens `path` for writing; throws kIo naming it when that fails. keep_up_to_step < 0 starts
  // an empty file; otherwise (a resumed run) the records of steps up to it are kept and later
  // ones, written after the checkpoint the run resumes from, are dropped.
  explicit MetricsWriter(const std::string& path, int64_t keep_up_to_step = -1);
  void write_train(const TrainProgress& progress);
  void write_eval(const EvalResult& result);
  // {"kind":"ranks","step":N,"first_step":M,"step_ms":[...],"wait_ms":[...],"slowest":r,
  //  "ratio":x}: per-rank mean compute and wait time per step over steps (M, N].
  void write_ranks(const RankWindow& window);
  // {"kind":"balance","step":N,"first_step":M,"samples_per_s":[...],"shares":[...],
  //  "previous":[...]}: comm.balance measured steps (M, N] and set the rows per rank.
  void write_balance(const BalanceDecision& decision);

 private:
  void write_line(const std::string& line);
  std::string path_;
  std::ofstream out_;
};

}  // namespace dpt
