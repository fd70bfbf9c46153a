// Loading, overriding, validating and printing run configs (schema: core/config.proto).
// Parse errors and invalid values throw dpt::Error(kConfig) with one line that names the file,
// the one-based line:column when the value came from the file, and the field path, e.g.
//   cfg.prototxt:12:5: optimizer.lr: must be > 0 (got -0.1)
//   --set optimizer.lr=-0.1: optimizer.lr: must be > 0 (got -0.1)
#pragma once

#include <string>
#include <vector>

#include "core/config.pb.h"

namespace dpt {

// Largest config file accepted, and the nesting limit given to the text parser.
constexpr std::size_t kMaxConfigBytes = 1 << 20;
constexpr int kConfigRecursionLimit = 100;

// Reads `path`, parses it, applies each "field.path=value" override in order, validates, and
// returns the config with defaults resolved (resolve_defaults). Unreadable: kConfig, strerror.
proto::Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// The same from text in memory; `source_name` stands for the file name in messages.
proto::Config parse_config(const std::string& text, const std::string& source_name,
                           const std::vector<std::string>& overrides = {});

// Applies one override "a.b.c=value" (repeated fields indexed as "model.layer[2].dense.units").
// Values use text-format syntax: numbers, true/false, enum names, strings with or without quotes,
// or a message body in braces, which is merged into the field (MergeFrom: repeated fields append).
// Index == size appends an element; a repeated field without an index is replaced by the value
// (one element or a "[a, b]" list). Setting a oneof member switches the oneof. On error (kConfig,
// "--set a.b=1: ...") `config` is unchanged.
void apply_override(proto::Config& config, const std::string& assignment);

// Checks every rule stated in config.proto; throws kConfig naming the first violated field.
// `source_name` prefixes messages; locations are unknown here (use parse_config for those).
void validate_config(const proto::Config& config, const std::string& source_name);

// Checks the rules stated in config.proto for a QuantizeConfig; throws kConfig naming
// "<source_name>: <path>.<field>". (Config does not hold one yet; `dpt compress` will.)
void validate_quantize_config(const proto::QuantizeConfig& quantize, const std::string& source_name,
                              const std::string& path = "compress.quantize");

// Makes every default explicit: sets each unset singular scalar, enum and string to its default,
// instantiates unset non-oneof messages, names every layer layer_name(), and picks sgd {} and a
// constant {} schedule when no kind is set. Afterwards has_*() is true for all those fields, so
// test optional values by content (data.test_path empty means no test set).
void resolve_defaults(proto::Config& config);

// The config as text format, every field printed (defaults made explicit), for DIR/config.prototxt.
std::string config_to_text(const proto::Config& config);

// Layer names after defaulting: the configured name, or "<kind><index>" ("dense0", "relu1", ...).
std::string layer_name(const proto::Config& config, int index);

}  // namespace dpt
