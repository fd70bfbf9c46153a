// dpt checkpoint inspect / verify.
#include <fmt/core.h>

#include <filesystem>

#include "core/config.h"
#include "devices/error.h"
#include "launch/checkpoint.h"
#include "launch/checkpoint_dir.h"
#include "launch/commands.h"

namespace dpt {
namespace {

constexpr int kFailed = static_cast<int>(ErrorKind::kCheckpoint);

void print_contents(const Checkpoint& checkpoint) {
  const TrainState& s = checkpoint.state;
  fmt::print("{}\n", checkpoint.path);
  fmt::print("  format {}, saved by dpt {}\n", kCheckpointFormat, s.version);
  fmt::print("  step {} (epoch {}, batch {} of it next), optimizer {} at {} steps\n", s.step,
             s.epoch, s.step_in_epoch, s.optimizer, s.optimizer_steps);
  fmt::print("  saved by {} workers, global batch {}, {} steps skipped\n", s.world_size,
             s.global_batch, s.skipped_steps);
  fmt::print("  training data {}\n", s.data_fingerprint);
  if (!s.balance_shares.empty()) {
    std::string shares;
    for (int64_t rows : s.balance_shares)
      shares += (shares.empty() ? "" : ", ") + std::to_string(rows);
    fmt::print("  rows per worker (comm.balance) {}\n", shares);
  }
  if (s.loss_scaler) {
    fmt::print(
        "  fp16 loss scale {:g} ({} clean steps in a row, {} steps skipped for overflow, the last "
        "{} in a row at min_scale)\n",
        s.loss_scaler->scale, s.loss_scaler->clean_steps, s.loss_scaler->skipped_steps,
        s.loss_scale_floor_skips);
  }
  int64_t values = 0;
  for (const Array& array : checkpoint.file.arrays) values += shape_numel(array.shape);
  fmt::print("  {} arrays, {} float32 values:\n", checkpoint.file.arrays.size(), values);
  for (const Array& array : checkpoint.file.arrays) {
    fmt::print("    {:<44} {}\n", array.name, shape_string(array.shape));
  }
  fmt::print("  config:\n");
  std::size_t start = 0;
  while (start < s.config_text.size()) {
    const std::size_t end = s.config_text.find('\n', start);
    fmt::print("    {}\n", s.config_text.substr(start, end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
}

}  // namespace

int run_checkpoint_inspect(const CheckpointArgs& args) {
  const Checkpoint checkpoint = read_checkpoint(args.path);
  print_contents(checkpoint);
  fmt::print("verified: every dataset's checksums and the state checksum match\n");
  return 0;
}

int run_checkpoint_verify(const CheckpointArgs& args) {
  std::vector<std::string> paths;
  if (std::filesystem::is_directory(args.path)) {
    for (const CheckpointEntry& entry : list_checkpoints(args.path)) paths.push_back(entry.path);
    DPT_CHECK_AS(ErrorKind::kCheckpoint, !paths.empty())
        << args.path << ": no checkpoint files (step_<N>.h5)";
  } else {
    paths.push_back(args.path);
  }
  int failed = 0;
  for (const std::string& path : paths) {
    try {
      const Checkpoint checkpoint = read_checkpoint(path);
      fmt::print("ok      {} (step {})\n", path, checkpoint.state.step);
    } catch (const Error& e) {
      ++failed;
      fmt::print("FAILED  {}\n", e.what());
    }
  }
  fmt::print("{} of {} checkpoints verify\n", paths.size() - failed, paths.size());
  return failed == 0 ? 0 : kFailed;
}

}  // namespace dpt
