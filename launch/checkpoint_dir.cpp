// Checkpoint directory bookkeeping (launch/checkpoint_dir.h).
#include "launch/checkpoint_dir.h"

#include <algorithm>
#include <filesystem>
#include <regex>

#include "devices/error.h"

namespace dpt {
namespace {

namespace fs = std::filesystem;

const std::regex kCheckpointName(R"(step_(\d{1,18})\.h5)");
const std::regex kLeftoverName(R"(step_\d{1,18}\.h5\.tmp\.\d+)");

std::vector<fs::path> files_in(const std::string& dir) {
  std::vector<fs::path> files;
  std::error_code error;
  if (!fs::is_directory(dir, error)) return files;
  for (const auto& entry : fs::directory_iterator(dir, error)) {
    if (entry.is_regular_file(error)) files.push_back(entry.path());
  }
  DPT_CHECK_AS(ErrorKind::kIo, !error) << dir << ": cannot list: " << error.message();
  return files;
}

void remove_file(const fs::path& path) {
  std::error_code error;
  fs::remove(path, error);
  DPT_CHECK_AS(ErrorKind::kIo, !error) << path.string() << ": cannot delete: " << error.message();
}

}  // namespace

std::vector<CheckpointEntry> list_checkpoints(const std::string& dir) {
  std::vector<CheckpointEntry> entries;
  for (const fs::path& path : files_in(dir)) {
    std::smatch match;
    const std::string name = path.filename().string();
    if (std::regex_match(name, match, kCheckpointName)) {
      entries.push_back({std::stoll(match[1].str()), path.string()});
    }
  }
  std::sort(entries.begin(), entries.end(),
            [](const CheckpointEntry& a, const CheckpointEntry& b) { return a.step < b.step; });
  return entries;
}

std::vector<std::string> remove_leftovers(const std::string& dir) {
  std::vector<std::string> removed;
  for (const fs::path& path : files_in(dir)) {
    if (std::regex_match(path.filename().string(), kLeftoverName)) {
      remove_file(path);
      removed.push_back(path.string());
    }
  }
  return removed;
}

std::vector<std::string> apply_retention(const std::string& dir, int64_t keep_last,
                                         int64_t keep_every) {
  const std::vector<CheckpointEntry> entries = list_checkpoints(dir);
  std::vector<std::string> removed;
  const std::size_t keep = static_cast<std::size_t>(std::max<int64_t>(keep_last, 1));
  for (std::size_t i = 0; i + keep < entries.size(); ++i) {
    if (keep_every > 0 && entries[i].step % keep_every == 0) continue;
    remove_file(entries[i].path);
    removed.push_back(entries[i].path);
  }
  return removed;
}

NewestValid find_newest_valid(const std::string& dir) {
  NewestValid result;
  std::vector<CheckpointEntry> entries = list_checkpoints(dir);
  result.candidates = entries.size();
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    try {
      result.checkpoint = read_checkpoint(it->path);
      return result;
    } catch (const Error& e) {
      result.skipped.push_back(e.what());
    }
  }
  return result;
}

}  // namespace dpt
