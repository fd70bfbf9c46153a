// Checkpoint files (launch/checkpoint.h): tensors through the array file, the scalar state as
// root attributes guarded by their own crc32, every name and shape checked before use.
#include "launch/checkpoint.h"

#include <fmt/core.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "devices/error.h"
#include "launch/device_transfer.h"

namespace dpt {
namespace {

constexpr ErrorKind kBad = ErrorKind::kCheckpoint;

// Attributes that make up the state, in a fixed order (the state checksum covers them).
constexpr const char* kStateKeys[] = {"format",
                                      "step",
                                      "epoch",
                                      "step_in_epoch",
                                      "optimizer_steps",
                                      "skipped_steps",
                                      "consecutive_skips",
                                      "world_size",
                                      "global_batch",
                                      "optimizer",
                                      "config",
                                      "version",
                                      "data_fingerprint",
                                      "rng",
                                      "balance_shares",
                                      "loss_scale",
                                      "loss_scale_clean_steps",
                                      "loss_scale_skipped",
                                      "loss_scale_floor_skips"};
// Keys the checksum covers only when present, so files written before they existed verify.
constexpr const char* kOptionalKeys[] = {"balance_shares", "loss_scale", "loss_scale_clean_steps",
                                         "loss_scale_skipped", "loss_scale_floor_skips"};

bool optional_key(const char* key) {
  return std::any_of(std::begin(kOptionalKeys), std::end(kOptionalKeys),
                     [&](const char* optional) { return std::strcmp(key, optional) == 0; });
}

// How the run's random numbers are reproduced: there is no hidden generator state to save.
constexpr const char* kRngDescription =
    "philox4x32-10, stateless: initialisation keyed by model.seed; dropout keyed by train.seed "
    "with counter (layer, step, global sample, feature); shuffling keyed by train.seed, one "
    "stream per epoch; the data cursor is (epoch, step_in_epoch)";

int64_t state_crc(const std::map<std::string, std::string>& attributes) {
  uLong crc = crc32_z(0, nullptr, 0);
  for (const char* key : kStateKeys) {
    const auto it = attributes.find(key);
    if (it == attributes.end() && optional_key(key)) continue;
    const std::string field = std::string(key) + "=" + (it == attributes.end() ? "" : it->second);
    // The length first, so "a=bc" + "d" differs from "a=b" + "cd".
    const std::string sized = std::to_string(field.size()) + ":" + field;
    crc = crc32_z(crc, reinterpret_cast<const Bytef*>(sized.data()), sized.size());
  }
  return static_cast<int64_t>(crc);
}

const std::string& attribute(const ArrayFile& file, const std::string& path, const char* key) {
  const auto it = file.attributes.find(key);
  DPT_CHECK_AS(kBad, it != file.attributes.end())
      << path << ": not a complete dpt checkpoint: attribute \"" << key << "\" is missing";
  return it->second;
}

int64_t int_attribute(const ArrayFile& file, const std::string& path, const char* key) {
  const std::string& text = attribute(file, path, key);
  char* end = nullptr;
  errno = 0;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  DPT_CHECK_AS(kBad, !text.empty() && *end == '\0' && errno == 0 && value >= 0)
      << path << ": attribute \"" << key << "\" is \"" << text << "\", not a count";
  return value;
}

// "45,15" -> {45, 15}: positive counts that sum to the global batch.
std::vector<int64_t> shares_attribute(const ArrayFile& file, const std::string& path,
                                      int64_t global_batch) {
  const auto it = file.attributes.find("balance_shares");
  if (it == file.attributes.end()) return {};
  const std::string& text = it->second;
  std::vector<int64_t> shares;
  int64_t sum = 0;
  for (std::size_t start = 0; start <= text.size();) {
    std::size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    const std::string item = text.substr(start, comma - start);
    char* end = nullptr;
    errno = 0;
    const long long value = std::strtoll(item.c_str(), &end, 10);
    DPT_CHECK_AS(kBad, !item.empty() && *end == '\0' && errno == 0 && value > 0 &&
                           value <= global_batch - sum)
        << path << ": attribute \"balance_shares\" is \"" << text
        << "\", not a list of positive row counts summing to the global batch " << global_batch;
    shares.push_back(value);
    sum += value;
    start = comma + 1;
  }
  DPT_CHECK_AS(kBad, sum == global_batch) << path << ": attribute \"balance_shares\" sums to "
                                          << sum << ", not the global batch " << global_batch;
  return shares;
}

// The loss scaler's state when the file has one ("loss_scale" present: all three must be).
std::optional<LossScalerState> scaler_attributes(const ArrayFile& file, const std::string& path) {
  const auto it = file.attributes.find("loss_scale");
  if (it == file.attributes.end()) return std::nullopt;
  const std::string& text = it->second;
  char* end = nullptr;
  errno = 0;
  const float scale = std::strtof(text.c_str(), &end);
  DPT_CHECK_AS(kBad,
               !text.empty() && *end == '\0' && errno == 0 && std::isfinite(scale) && scale > 0.0f)
      << path << ": attribute \"loss_scale\" is \"" << text << "\", not a finite positive number";
  LossScalerState state;
  state.scale = scale;
  state.clean_steps = int_attribute(file, path, "loss_scale_clean_steps");
  state.skipped_steps = int_attribute(file, path, "loss_scale_skipped");
  return state;
}

std::string param_path(const NamedParam& param) { return "params/" + param.name; }

std::string state_path(const std::string& state, const NamedParam& param) {
  return "optimizer/" + state + "/" + param.name;
}

// Each parameter's offset in the flat buffer (named_params() walks it in order, contiguously).
std::vector<int64_t> param_offsets(const std::vector<NamedParam>& params, int64_t total) {
  std::vector<int64_t> offsets;
  int64_t offset = 0;
  for (const NamedParam& param : params) {
    offsets.push_back(offset);
    offset += param.value.numel();
  }
  DPT_CHECK(offset == total) << "checkpoint: parameters cover " << offset << " of " << total
                             << " values of the flat buffer";
  return offsets;
}

// Where each array of the checkpoint goes: (array name, a view of the model's or optimizer's
// buffer, which may be device memory; its shape is the array's).
struct Slot {
  std::string name;
  Tensor tensor;
  const Shape& shape() const { return tensor.shape(); }
};

std::vector<Slot> slots(const Model& model, Optimizer& optimizer) {
  const std::vector<NamedParam> params = model.named_params();
  const std::vector<int64_t> offsets = param_offsets(params, model.num_params());
  std::vector<Slot> result;
  for (const NamedParam& param : params) {
    result.push_back({param_path(param), param.value});
  }
  for (const NamedTensor& state : optimizer.state()) {
    if (state.tensor.numel() == model.num_params()) {
      for (std::size_t i = 0; i < params.size(); ++i) {
        result.push_back({state_path(state.name, params[i]),
                          state.tensor.slice(offsets[i], params[i].value.shape())});
      }
    } else {
      result.push_back({"optimizer/" + state.name, state.tensor});
    }
  }
  return result;
}

}  // namespace

const std::vector<CountField>& train_state_counts() {
  static const std::vector<CountField> fields = {
      {"step", &TrainState::step},
      {"epoch", &TrainState::epoch},
      {"step_in_epoch", &TrainState::step_in_epoch},
      {"optimizer_steps", &TrainState::optimizer_steps},
      {"skipped_steps", &TrainState::skipped_steps},
      {"consecutive_skips", &TrainState::consecutive_skips},
      {"world_size", &TrainState::world_size},
      {"global_batch", &TrainState::global_batch},
  };
  return fields;
}

std::string checkpoint_file_name(int64_t step) { return fmt::format("step_{:06d}.h5", step); }

void save_checkpoint(const std::string& path, const Model& model, Optimizer& optimizer,
                     const TrainState& state) {
  DPT_CHECK(model.dtype() == DType::kF32) << "checkpoints hold float32 parameters";
  ArrayFile file;
  for (const Slot& slot : slots(model, optimizer)) {
    file.arrays.push_back({slot.name, slot.shape(), to_host(slot.tensor)});
  }
  auto& a = file.attributes;
  a["format"] = kCheckpointFormat;
  for (const CountField& count : train_state_counts()) {
    a[count.name] = std::to_string(state.*count.field);
  }
  a["optimizer"] = state.optimizer;
  a["config"] = state.config_text;
  a["version"] = state.version;
  a["data_fingerprint"] = state.data_fingerprint;
  a["rng"] = kRngDescription;
  if (!state.balance_shares.empty()) {
    std::string shares;
    for (int64_t rows : state.balance_shares) {
      shares += (shares.empty() ? "" : ",") + std::to_string(rows);
    }
    a["balance_shares"] = shares;
  }
  if (state.loss_scaler) {
    a["loss_scale"] = fmt::format("{:.9g}", state.loss_scaler->scale);  // reads back exactly
    a["loss_scale_clean_steps"] = std::to_string(state.loss_scaler->clean_steps);
    a["loss_scale_skipped"] = std::to_string(state.loss_scaler->skipped_steps);
    // Only mid-streak, so files saved outside one are unchanged from before the field existed.
    if (state.loss_scale_floor_skips > 0) {
      a["loss_scale_floor_skips"] = std::to_string(state.loss_scale_floor_skips);
    }
  }
  a["state_crc32"] = std::to_string(state_crc(a));
  write_array_file(path, file);
}

Checkpoint read_checkpoint(const std::string& path) {
  Checkpoint checkpoint;
  checkpoint.path = path;
  checkpoint.file = read_array_file(path);
  const ArrayFile& file = checkpoint.file;
  const std::string& format = attribute(file, path, "format");
  DPT_CHECK_AS(kBad, format == kCheckpointFormat)
      << path << ": not a dpt checkpoint (format \"" << format << "\", expected \""
      << kCheckpointFormat << "\")";
  const int64_t stored_crc = int_attribute(file, path, "state_crc32");
  DPT_CHECK_AS(kBad, stored_crc == state_crc(file.attributes))
      << path << ": the training state attributes are corrupt (state_crc32 " << stored_crc
      << ", computed " << state_crc(file.attributes) << ")";
  TrainState& s = checkpoint.state;
  for (const CountField& count : train_state_counts()) {
    s.*count.field = int_attribute(file, path, count.name);
  }
  s.optimizer = attribute(file, path, "optimizer");
  s.config_text = attribute(file, path, "config");
  s.version = attribute(file, path, "version");
  s.data_fingerprint = attribute(file, path, "data_fingerprint");
  s.balance_shares = shares_attribute(file, path, s.global_batch);
  s.loss_scaler = scaler_attributes(file, path);
  if (s.loss_scaler && file.attributes.count("loss_scale_floor_skips") > 0) {
    s.loss_scale_floor_skips = int_attribute(file, path, "loss_scale_floor_skips");
  }
  return checkpoint;
}

void restore_checkpoint(const Checkpoint& checkpoint, Model& model, Optimizer& optimizer) {
  const std::string& path = checkpoint.path;
  DPT_CHECK_AS(kBad, checkpoint.state.optimizer == optimizer.name())
      << path << ": saved with optimizer " << checkpoint.state.optimizer << ", the config asks for "
      << optimizer.name() << " (the optimizer kind cannot change on resume)";
  const std::vector<Slot> targets = slots(model, optimizer);
  // Check everything before copying anything.
  for (const Slot& slot : targets) {
    const Array* array = checkpoint.file.find(slot.name);
    DPT_CHECK_AS(kBad, array != nullptr)
        << path << ": missing " << slot.name << " (the model expects " << shape_string(slot.shape())
        << ")";
    DPT_CHECK_AS(kBad, array->shape == slot.shape())
        << path << ": " << slot.name << " has shape " << shape_string(array->shape)
        << ", the model expects " << shape_string(slot.shape());
  }
  for (const Array& array : checkpoint.file.arrays) {
    const bool known = std::any_of(targets.begin(), targets.end(),
                                   [&](const Slot& slot) { return slot.name == array.name; });
    DPT_CHECK_AS(kBad, known) << path << ": holds " << array.name << " "
                              << shape_string(array.shape)
                              << ", which the model and optimizer do not have";
  }
  for (const Slot& slot : targets) {
    from_host(slot.tensor, checkpoint.file.find(slot.name)->values.data());
  }
  optimizer.set_steps(checkpoint.state.optimizer_steps);
}

}  // namespace dpt
