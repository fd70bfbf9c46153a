// Resume (launch/resume.h): rank 0 decides and loads; every rank receives the outcome.
#include "launch/resume.h"

#include <google/protobuf/text_format.h>

#include <cstring>

#include "devices/error.h"
#include "launch/checkpoint_dir.h"
#include "launch/device_transfer.h"
#include "launch/fingerprint.h"

namespace dpt {
namespace {

namespace pb = google::protobuf;

constexpr const char* kMayChange[] = {
    "name",
    "train.epochs",
    "train.max_steps",
    "train.log_every_steps",
    "train.eval_every_epochs",
    "train.eval_batch_size",
    "train.micro_batch_size",
    "train.on_non_finite",
    "train.max_consecutive_skips",
    "optimizer.lr",
    "optimizer.schedule",
    "optimizer.clip_grad_norm",
    "data.test_path",
    "device",
    "comm",
    "compress",
    "checkpoint",
    "fault_injection",
    "monitor",
    "trace",
};

std::string field_text(const pb::Message& message, const pb::FieldDescriptor* field, int index) {
  std::string text;
  pb::TextFormat::PrintFieldValueToString(message, field, index, &text);
  return text;
}

void diff(const pb::Message& a, const pb::Message& b, const std::string& prefix,
          std::vector<std::string>& out) {
  const pb::Descriptor* descriptor = a.GetDescriptor();
  const pb::Reflection* ra = a.GetReflection();
  const pb::Reflection* rb = b.GetReflection();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const pb::FieldDescriptor* field = descriptor->field(i);
    const std::string path = prefix.empty() ? field->name() : prefix + "." + field->name();
    const bool message = field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE;
    if (const pb::OneofDescriptor* oneof = field->containing_oneof()) {
      // A oneof (the optimizer kind) differs as a whole when another member is set.
      const pb::FieldDescriptor* set_a = ra->GetOneofFieldDescriptor(a, oneof);
      const pb::FieldDescriptor* set_b = rb->GetOneofFieldDescriptor(b, oneof);
      if (set_a != set_b) {
        if (oneof->field(0) == field) {
          out.push_back(prefix.empty() ? oneof->name() : prefix + "." + oneof->name());
        }
        continue;
      }
      if (set_a != field) continue;
    }
    if (field->is_repeated()) {
      const int n = ra->FieldSize(a, field);
      if (n != rb->FieldSize(b, field)) {
        out.push_back(path);
        continue;
      }
      for (int k = 0; k < n; ++k) {
        const std::string item = path + "[" + std::to_string(k) + "]";
        if (message) {
          diff(ra->GetRepeatedMessage(a, field, k), rb->GetRepeatedMessage(b, field, k), item, out);
        } else if (field_text(a, field, k) != field_text(b, field, k)) {
          out.push_back(item);
        }
      }
    } else if (message) {
      // Presence matters for messages: it is how the optimizer kind (a oneof) is chosen.
      if (ra->HasField(a, field) != rb->HasField(b, field)) {
        out.push_back(path);
      } else {
        diff(ra->GetMessage(a, field), rb->GetMessage(b, field), path, out);
      }
    } else if (field_text(a, field, -1) != field_text(b, field, -1)) {
      out.push_back(path);
    }
  }
}

// The value of a dotted path's leaf in `config`, for messages ("0.001", "{ ... }", "unset").
std::string value_at(const proto::Config& config, const std::string& path) {
  const pb::Message* message = &config;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot - start);
    int index = -1;
    const std::size_t bracket = part.find('[');
    if (bracket != std::string::npos) {
      index = std::stoi(part.substr(bracket + 1));
      part = part.substr(0, bracket);
    }
    const pb::FieldDescriptor* field = message->GetDescriptor()->FindFieldByName(part);
    if (field == nullptr) {
      const pb::OneofDescriptor* oneof = message->GetDescriptor()->FindOneofByName(part);
      if (oneof == nullptr) return "?";
      const pb::FieldDescriptor* set =
          message->GetReflection()->GetOneofFieldDescriptor(*message, oneof);
      return set == nullptr ? "unset" : set->name();
    }
    const pb::Reflection* reflection = message->GetReflection();
    if (field->is_repeated() && index < 0) {
      return std::to_string(reflection->FieldSize(*message, field)) + " entries";
    }
    if (field->is_repeated() && index >= reflection->FieldSize(*message, field)) return "absent";
    if (dot == std::string::npos) {
      if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE && !field->is_repeated() &&
          !reflection->HasField(*message, field)) {
        return "unset";
      }
      std::string text = field_text(*message, field, index);
      for (char& c : text) c = c == '\n' ? ' ' : c;
      return text;
    }
    message = field->is_repeated() ? &reflection->GetRepeatedMessage(*message, field, index)
                                   : &reflection->GetMessage(*message, field);
    start = dot + 1;
  }
}

// Loads, checks and restores on rank 0. Returns the result, or throws.
ResumeResult load_on_rank0(const std::string& resume, const std::string& checkpoint_dir,
                           const proto::Config& config, const std::string& data_fingerprint,
                           Model& model, Optimizer& optimizer) {
  ResumeResult result;
  std::optional<Checkpoint> checkpoint;
  if (resume.empty()) {
    const std::vector<CheckpointEntry> existing = list_checkpoints(checkpoint_dir);
    DPT_CHECK_AS(ErrorKind::kConfig, existing.empty())
        << checkpoint_dir << " already holds checkpoints (newest: step " << existing.back().step
        << "): pass --resume auto to continue that run, or use another --run-dir";
    return result;
  }
  if (resume == "auto") {
    NewestValid found = find_newest_valid(checkpoint_dir);
    for (const std::string& skipped : found.skipped) {
      result.notes.push_back("warning: skipping a checkpoint that does not verify: " + skipped);
    }
    if (!found.checkpoint) {
      DPT_CHECK_AS(ErrorKind::kCheckpoint, found.candidates == 0)
          << checkpoint_dir << ": none of the " << found.candidates
          << " checkpoints verifies; nothing to resume from";
      result.notes.push_back("resume auto: no checkpoint in " + checkpoint_dir +
                             ", starting from scratch");
      return result;
    }
    checkpoint = std::move(found.checkpoint);
  } else {
    checkpoint = read_checkpoint(resume);
  }
  const std::vector<std::string> changes = check_resumable(*checkpoint, config, data_fingerprint);
  restore_checkpoint(*checkpoint, model, optimizer);
  result.resumed = true;
  result.state = checkpoint->state;
  std::string line = "resuming from " + checkpoint->path + " at step " +
                     std::to_string(result.state.step) + " (saved by " +
                     std::to_string(result.state.world_size) + " workers)";
  if (!changes.empty()) {
    line += "; changed:";
    for (const std::string& change : changes) line += " " + change;
  }
  result.notes.push_back(line);
  return result;
}

}  // namespace

bool resume_may_change(const std::string& field_path) {
  for (const char* allowed : kMayChange) {
    const std::size_t n = std::strlen(allowed);
    if (field_path.compare(0, n, allowed) == 0 &&
        (field_path.size() == n || field_path[n] == '.' || field_path[n] == '[')) {
      return true;
    }
  }
  return false;
}

std::vector<std::string> config_differences(const proto::Config& saved,
                                            const proto::Config& current) {
  std::vector<std::string> out;
  diff(saved, current, "", out);
  return out;
}

std::vector<std::string> check_resumable(const Checkpoint& checkpoint, const proto::Config& config,
                                         const std::string& data_fingerprint) {
  proto::Config saved;
  DPT_CHECK_AS(ErrorKind::kCheckpoint,
               pb::TextFormat::ParseFromString(checkpoint.state.config_text, &saved))
      << checkpoint.path << ": the saved config does not parse with this version of dpt";
  std::vector<std::string> allowed;
  for (const std::string& field : config_differences(saved, config)) {
    DPT_CHECK_AS(ErrorKind::kCheckpoint, resume_may_change(field))
        << checkpoint.path << ": cannot resume with a different " << field
        << " (checkpoint: " << value_at(saved, field) << ", config: " << value_at(config, field)
        << "); only the fields README \"Resume\" lists may change";
    allowed.push_back(field);
  }
  DPT_CHECK_AS(ErrorKind::kCheckpoint, checkpoint.state.data_fingerprint == data_fingerprint)
      << checkpoint.path << ": the training data (" << config.data().train_path()
      << ") differs from the data the checkpoint was trained on (fingerprint "
      << checkpoint.state.data_fingerprint << ", now " << data_fingerprint << ")";
  return allowed;
}

ResumeResult resume_training(Communicator& comm, const std::string& resume,
                             const std::string& checkpoint_dir, const proto::Config& config,
                             const std::string& data_fingerprint, Model& model,
                             Optimizer& optimizer) {
  ResumeResult result;
  int64_t status[2] = {0, 0};  // error kind (0: none), resumed
  std::string error;
  if (comm.rank() == 0) {
    try {
      result = load_on_rank0(resume, checkpoint_dir, config, data_fingerprint, model, optimizer);
      status[1] = result.resumed ? 1 : 0;
    } catch (const Error& e) {
      status[0] = static_cast<int64_t>(e.kind());
      error = e.what();
    }
  }
  if (comm.size() > 1) comm.broadcast(status, 2, DType::kI64, 0);
  if (status[0] != 0) {
    if (comm.size() > 1) error = broadcast_text(comm, error);
    throw Error(static_cast<ErrorKind>(status[0]),
                comm.rank() == 0 ? error : "rank 0 could not resume: " + error);
  }
  result.resumed = status[1] != 0;
  if (!result.resumed || comm.size() == 1) return result;
  std::vector<int64_t> counts;
  for (const CountField& count : train_state_counts()) counts.push_back(result.state.*count.field);
  comm.broadcast(counts.data(), counts.size(), DType::kI64, 0);
  for (std::size_t i = 0; i < counts.size(); ++i) {
    result.state.*train_state_counts()[i].field = counts[i];
  }
  std::vector<int64_t>& shares = result.state.balance_shares;
  int64_t num_shares = static_cast<int64_t>(shares.size());
  comm.broadcast(&num_shares, 1, DType::kI64, 0);
  shares.resize(static_cast<std::size_t>(num_shares));
  if (num_shares > 0) comm.broadcast(shares.data(), shares.size(), DType::kI64, 0);
  // The loss scaler's state: {present, the scale's float bits, clean steps, skipped steps,
  // floor skips}.
  std::optional<LossScalerState>& scaler = result.state.loss_scaler;
  int64_t scaler_fields[5] = {scaler ? 1 : 0, 0, scaler ? scaler->clean_steps : 0,
                              scaler ? scaler->skipped_steps : 0,
                              result.state.loss_scale_floor_skips};
  if (scaler) std::memcpy(&scaler_fields[1], &scaler->scale, sizeof(float));
  comm.broadcast(scaler_fields, 5, DType::kI64, 0);
  if (scaler_fields[0] != 0) {
    scaler.emplace();
    std::memcpy(&scaler->scale, &scaler_fields[1], sizeof(float));
    scaler->clean_steps = scaler_fields[2];
    scaler->skipped_steps = scaler_fields[3];
  }
  result.state.loss_scale_floor_skips = scaler_fields[4];
  broadcast_tensor(comm, model.params(), 0);
  for (const NamedTensor& state : optimizer.state()) broadcast_tensor(comm, state.tensor, 0);
  optimizer.set_steps(result.state.optimizer_steps);
  return result;
}

}  // namespace dpt
