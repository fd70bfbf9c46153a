// The validator of core/config.proto's value rules, shared by the files that define it:
// config_validator.cpp (paths, locations, message prefixes and the range checks every rule uses),
// config_validate.cpp (the entry points, the order of sections, and the rules of model, data,
// train, device, comm and checkpoint), config_validate_optimizer.cpp (optimizer and its lr
// schedule) and config_validate_tools.cpp (compress and tune). Internal: include core/config.h.
#pragma once

#include <google/protobuf/descriptor.h>

#include <cstdint>
#include <limits>
#include <string>

#include "core/config_internal.h"

namespace dpt::config_internal {

namespace pb = google::protobuf;
using Location = pb::TextFormat::ParseLocation;

// An interval rule, e.g. "in [0, 1)"; hi is +inf for one-sided rules.
struct Range {
  double lo;
  bool lo_open;
  double hi;
  bool hi_open;
  const char* text;
  bool contains(double v) const {
    return (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
  }
};
inline constexpr double kInf = std::numeric_limits<double>::infinity();
inline constexpr Range kPositive{0, true, kInf, false, "> 0"};
inline constexpr Range kAboveOne{1, true, kInf, false, "> 1"};
inline constexpr Range kNonNegative{0, false, kInf, false, ">= 0"};
inline constexpr Range kFraction{0, false, 1, false, "in [0, 1]"};
inline constexpr Range kDecay{0, false, 1, true, "in [0, 1)"};
inline constexpr Range kOpenFraction{0, true, 1, true, "in (0, 1)"};
inline constexpr Range kFactor{0, true, 1, false, "in (0, 1]"};
inline constexpr Range kAnyFinite{-kInf, true, kInf, true, "finite"};
inline constexpr Range kChunkBytes{4096, false, kInf, false, "0 (automatic) or >= 4096"};
inline constexpr Range kPositiveFraction{0, true, 1, false, "in (0, 1]"};
inline constexpr Range kAtLeastTen{10, false, kInf, false, ">= 10"};
inline constexpr Range kPercentile{50, false, 100, false, "in [50, 100]"};

// One message under validation: its path ("model.layer[2]"), its locations subtree (null when it
// was not written in the file) and where the message itself was written.
struct Node {
  const pb::Message* message;
  std::string path;
  const pb::TextFormat::ParseInfoTree* tree;
  Location location;
};

// A string for a one-line message: quoted, with control characters escaped.
std::string quoted(const std::string& text);

// Checks a config section by section, in field order, and throws kConfig at the first violation.
// Holds `provenance` by reference: it must outlive the Validator.
class Validator {
 public:
  explicit Validator(const Provenance& provenance) : provenance_(provenance) {}

  // A QuantizeConfig on its own, named `path` in messages (until Config holds one).
  void run_quantize(const proto::QuantizeConfig& quantize, const std::string& path);

  void run(const proto::Config& config);

 private:
  // config_validator.cpp: the machinery.
  const pb::FieldDescriptor* field_of(const Node& node, const char* name) const;
  static std::string join(const std::string& path, const std::string& name, int index);
  Node child(const Node& node, const char* name, int index = -1) const;
  std::string prefix(const std::string& path, Location location) const;
  [[noreturn]] void fail_node(const Node& node, const std::string& what) const;
  [[noreturn]] void fail(const Node& node, const char* name, const std::string& what,
                         int index = -1) const;
  void require(const Node& node, const char* name) const;
  void check_float(const Node& node, const char* name, float value, const Range& range) const;
  void check_int(const Node& node, const char* name, int64_t value, const Range& range) const;

  // config_validate.cpp
  void check_model(const Node& node, const proto::ModelConfig& model) const;
  void check_comm(const Node& node, const proto::CommConfig& comm) const;
  void check_checkpoint(const Node& node, const proto::CheckpointConfig& checkpoint) const;
  void check_dense(const Node& node, const proto::DenseConfig& dense) const;
  void check_data(const Node& node, const proto::DataConfig& data) const;
  void check_device(const Node& node, const proto::DeviceConfig& device) const;
  void check_train(const Node& node, const proto::TrainConfig& train) const;

  // config_validate_optimizer.cpp
  void check_optimizer(const Node& node, const proto::OptimizerConfig& optimizer) const;
  void check_adam(const Node& node, const proto::AdamConfig& adam) const;
  void check_schedule(const Node& node, const proto::LrScheduleConfig& schedule) const;

  // config_validate_tools.cpp
  void check_compress(const Node& node, const proto::CompressConfig& compress) const;
  void check_quantize(const Node& node, const proto::QuantizeConfig& quantize) const;
  void check_tune(const Node& node, const proto::TuneConfig& tune) const;

  const Provenance& provenance_;
  const proto::Config* config_ = nullptr;
};

}  // namespace dpt::config_internal
