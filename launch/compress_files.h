// Where `dpt compress` writes, and the writing: OUT's directory checked before any work, the
// pruned float32 model (with its config next to it when structured pruning shrank the layers),
// the int8 model, and the names of the files beside OUT. Called by compress_command.cpp.
#pragma once

#include <string>

#include "core/config.pb.h"
#include "core/model.h"
#include "core/quantize.h"
#include "devices/device.h"
#include "launch/prune_finetune.h"

namespace dpt {

// The fine-tuning directory used when --run-dir is not given: "dir/small.h5" ->
// "dir/small_finetune".
std::string default_finetune_dir(const std::string& out);

// Where the config of a structurally pruned OUT goes: "dir/small.h5" -> "dir/small.prototxt".
std::string config_path_for(const std::string& out);

// "small.h5" -> "small_fp32.h5": where the pruned float32 model goes when OUT is its int8 version.
std::string fp32_sibling(const std::string& out);

// Creates OUT's directory when needed and refuses, before any work, one that cannot be written.
void prepare_out_dir(const std::string& out);

// Writes `state` as a weights file at `path` and, when its shapes changed, its config next to it.
// Returns the config path written, or "".
std::string save_state(const PruneState& state, Device& device, const std::string& path,
                       const std::string& from, const std::string& method);

// Quantizes `source` (of `source_config`), calibrated on the training set, and writes it to
// `path` (with the config next to it when `shapes_changed`).
QuantizedModel quantize_to_file(Model& source, const proto::Config& source_config,
                                const std::string& path, const std::string& from,
                                const std::string& method, bool shapes_changed);

}  // namespace dpt
