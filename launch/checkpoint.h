// One checkpoint file: everything a run needs to continue exactly where it stopped, in one
// self-describing HDF5 file built on core/array_file.h (so every dataset is Fletcher32-chunked,
// carries a crc32, and the file is written atomically). Layout (README "Checkpoint file"):
//   /params/<layer>/<param>                 float32, the parameter's shape
//   /optimizer/<state>/<layer>/<param>      float32, e.g. optimizer/adam.m/dense0/weight
//   root attributes                         format, step, epoch, position, optimizer steps,
//                                           config text, world size, global batch, version,
//                                           RNG description, data fingerprint, state_crc32,
//                                           balance_shares (only when balanced), loss_scale,
//                                           loss_scale_clean_steps, loss_scale_skipped (only
//                                           with fp16 loss scaling), loss_scale_floor_skips
//                                           (only during an overflow streak at min_scale)
// Saving and loading never touch the communicator: the trainer decides who writes (rank 0) and
// distributes what rank 0 read (launch/resume.h).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/array_file.h"
#include "core/model.h"
#include "optim/loss_scaler.h"
#include "optim/optimizer.h"

namespace dpt {

constexpr const char* kCheckpointFormat = "dpt-checkpoint-1";

// The scalar training state a checkpoint carries besides its tensors.
struct TrainState {
  int64_t step = 0;             // optimizer steps completed (the next step's index)
  int64_t epoch = 0;            // epoch of the next step
  int64_t step_in_epoch = 0;    // the next step's batch index in that epoch's permutation
  int64_t optimizer_steps = 0;  // Optimizer::steps() (differs from step after skipped steps)
  int64_t skipped_steps = 0;
  int64_t consecutive_skips = 0;
  int64_t world_size = 1;  // at save time (informational: resume works at any size)
  int64_t global_batch = 0;
  std::string optimizer;         // Optimizer::name()
  std::string config_text;       // the resolved config of the run that saved it
  std::string version;           // dpt version that saved it
  std::string data_fingerprint;  // of the training data (launch/fingerprint.h)
  // Rows of the global batch per rank set by comm.balance (launch/balance.h); empty: equal split.
  std::vector<int64_t> balance_shares;
  // The fp16 loss scaler's state (launch/loss_scaling.h); empty: the run did not scale its loss,
  // or the file predates loss scaling.
  std::optional<LossScalerState> loss_scaler;
  // With loss_scaler: steps in a row, ending with the last step done (step - 1), whose fp16
  // gradients overflowed with the scale at device.loss_scale.min_scale (launch/loss_scaling.h
  // stops the run past train.max_consecutive_skips of them). 0 in files that predate it.
  int64_t loss_scale_floor_skips = 0;
};

// The integer fields of TrainState with their attribute names, in a fixed order (shared by
// saving, reading and resume's broadcast, so a new field is added in one place).
struct CountField {
  const char* name;
  int64_t TrainState::*field;
};
const std::vector<CountField>& train_state_counts();

// A checkpoint read back and verified: its state, its arrays and every root attribute.
struct Checkpoint {
  std::string path;
  TrainState state;
  ArrayFile file;
};

// Builds the file contents from the model, the optimizer and `state` and writes them atomically
// to `path` (temporary, fsync, rename, fsync of the directory). Throws kIo naming the path and
// the cause (disk full, unwritable); the previous file under `path`, if any, stays intact.
void save_checkpoint(const std::string& path, const Model& model, Optimizer& optimizer,
                     const TrainState& state);

// Reads and verifies a checkpoint: HDF5 structure, every dataset's checksums, the format, every
// state attribute present and well-formed, and the state checksum. Throws kCheckpoint naming the
// path and the reason; never crashes on hostile files (sizes are checked before reading).
Checkpoint read_checkpoint(const std::string& path);

// Copies the checkpoint's parameters and optimizer state into `model` and `optimizer`, after
// checking every tensor first: a missing, extra or differently shaped tensor, or another
// optimizer kind, throws kCheckpoint naming the tensor and both shapes, and changes nothing.
void restore_checkpoint(const Checkpoint& checkpoint, Model& model, Optimizer& optimizer);

// "step_000200.h5" for step 200 (at least six digits).
std::string checkpoint_file_name(int64_t step);

}  // namespace dpt
