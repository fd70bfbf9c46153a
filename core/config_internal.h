// Internals shared by config.cpp (loading, printing), config_override.cpp (--set) and
// config_validate.cpp (the rules). Not part of the public API: include core/config.h instead.
// What ties them together is provenance: where each value came from (a file line:column, an
// override, or nowhere), so that a validation error can point at the line the user must change.
#pragma once

#include <string>
#include <vector>

#include <google/protobuf/text_format.h>

#include "core/config.pb.h"

namespace dpt::config_internal {

// One applied override: its text ("optimizer.lr=-0.1") and the field paths it wrote, in the
// validator's spelling ("optimizer.lr", "model.layer[2]",
// "optimizer.schedule.multistep.milestones").
struct OverrideRecord {
  std::string assignment;
  std::vector<std::string> paths;
};

// Where the values of a config came from. `tree` (locations in the file, zero-based) and
// `overrides` (applied after the file, in order) may be null.
struct Provenance {
  std::string source_name;
  const google::protobuf::TextFormat::ParseInfoTree* tree = nullptr;
  const std::vector<OverrideRecord>* overrides = nullptr;
};

// apply_override, also returning what it wrote. Strong guarantee: on error `config` is unchanged.
OverrideRecord apply_override_recorded(proto::Config& config, const std::string& assignment);

// validate_config with provenance: messages carry "file:line:col:" or "--set a=b:" prefixes.
void validate_with_provenance(const proto::Config& config, const Provenance& provenance);

// Shortest decimal text that reads back as the same float ("-0.1", "nan", "inf").
std::string float_text(float value);

}  // namespace dpt::config_internal
