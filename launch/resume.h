// Resuming a run: which checkpoint (--resume auto: the newest that verifies; --resume PATH:
// exactly that file), whether the current config may continue it, and getting rank 0's copy of
// the state to every rank. Only rank 0 reads files (ranks on other nodes need no shared disk);
// an error there is re-thrown on every rank with the same message, so no rank waits for a peer
// that gave up.
#pragma once

#include <string>
#include <vector>

#include "comm/communicator.h"
#include "core/config.pb.h"
#include "launch/checkpoint.h"

namespace dpt {

// Config fields that may differ between a checkpoint's run and the run resuming it (README
// "Resume"): name, train.{epochs, max_steps, log_every_steps, eval_every_epochs,
// eval_batch_size, micro_batch_size, on_non_finite, max_consecutive_skips}, optimizer.{lr,
// schedule, clip_grad_norm}, data.test_path, and all of device, comm, checkpoint,
// fault_injection, monitor, trace. Everything else (model, optimizer kind and hyperparameters,
// global batch, seeds, training data and its normalisation) decides what the run computes and
// must match.
bool resume_may_change(const std::string& field_path);

// Dotted paths of the fields whose values differ ("optimizer.lr", "model.layer[1].dense.units",
// "optimizer.kind" when another member of that oneof is set), in schema order.
std::vector<std::string> config_differences(const proto::Config& saved,
                                            const proto::Config& current);

// Throws kCheckpoint when `checkpoint` cannot continue under `config`: a field that must match
// differs (naming it and both values), or the training data changed. Returns the allowed changes.
std::vector<std::string> check_resumable(const Checkpoint& checkpoint, const proto::Config& config,
                                         const std::string& data_fingerprint);

struct ResumeResult {
  bool resumed = false;
  TrainState state;                // valid when resumed
  std::vector<std::string> notes;  // lines for the user (skipped files, allowed changes)
};

// A collective. `resume`: "" (start fresh; refused when checkpoint_dir already has checkpoints),
// "auto" (newest valid checkpoint in checkpoint_dir, or fresh when there is none) or a path.
// On success every rank's model and optimizer hold the checkpoint's values.
ResumeResult resume_training(Communicator& comm, const std::string& resume,
                             const std::string& checkpoint_dir, const proto::Config& config,
                             const std::string& data_fingerprint, Model& model,
                             Optimizer& optimizer);

}  // namespace dpt
