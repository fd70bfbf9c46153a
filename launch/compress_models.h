// The models `dpt compress` measures, as rows of its table (launch/compress_table.h): a float32
// dpt Model or an Int8Model wrapped in a ModelUnderTest, the test samples accuracy is measured on
// and the inputs every model is timed on. Called by compress_command.cpp.
#pragma once

#include <cstdint>
#include <string>

#include "core/config.pb.h"
#include "core/dataset.h"
#include "core/int8_model.h"
#include "core/model.h"
#include "core/tensor.h"
#include "devices/device.h"
#include "launch/compress_table.h"
#include "launch/inference_bench.h"
#include "launch/prune_finetune.h"

namespace dpt {

// The first `n` samples of `dataset` (all of them when n is 0 or larger than the set).
Dataset first_samples(const Dataset& dataset, int64_t n);

// The pruned column: "80.0% of weights" / "50.0% of neurons".
std::string pruned_text(const PruneState& state);

// What measure_rows needs to measure a float32 dpt Model; `model` and `inputs` must outlive it.
ModelUnderTest float_model(const std::string& method, Model& model, const std::string& file,
                           const std::string& pruned, const Dataset& test,
                           const proto::Config& config, const Tensor& inputs);

// The int8 counterpart of float_model; `model`, `device` and `inputs` must outlive it.
ModelUnderTest int8_model(const std::string& method, Int8Model& model, Device& device,
                          const Model& source, const std::string& file, const std::string& pruned,
                          const Dataset& test, const proto::Config& config, const Tensor& inputs);

// compress.throughput_batch normalised test samples (repeated when the test set is smaller).
Tensor bench_inputs(Device& device, const proto::Config& config, const Dataset& test);

// The timing options of config compress.
InferenceBenchOptions bench_options(const proto::CompressConfig& compress);

}  // namespace dpt
