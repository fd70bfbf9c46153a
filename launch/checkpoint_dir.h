// The checkpoint directory of a run (RUN_DIR/checkpoints): which checkpoints exist, which is the
// newest that verifies (--resume auto), retention (newest K plus every Mth), and clean-up of the
// temporaries a save killed midway left behind.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "launch/checkpoint.h"

namespace dpt {

struct CheckpointEntry {
  int64_t step = 0;
  std::string path;
};

// Files named step_<N>.h5 in `dir`, by step ascending; none when `dir` does not exist.
std::vector<CheckpointEntry> list_checkpoints(const std::string& dir);

// Deletes temporaries of interrupted saves (step_<N>.h5.tmp.<pid>); returns their paths.
std::vector<std::string> remove_leftovers(const std::string& dir);

// Keeps the newest `keep_last` checkpoints and those whose step is a multiple of `keep_every`
// (0: none); deletes the rest and returns their paths. Throws kIo when a delete fails.
std::vector<std::string> apply_retention(const std::string& dir, int64_t keep_last,
                                         int64_t keep_every);

struct NewestValid {
  std::optional<Checkpoint> checkpoint;  // none when no checkpoint verifies (or none exists)
  std::vector<std::string> skipped;      // "<path>: <reason>" for each newer one that failed
  std::size_t candidates = 0;            // checkpoint files found
};

// The newest checkpoint in `dir` that reads and verifies, newest first.
NewestValid find_newest_valid(const std::string& dir);

}  // namespace dpt
