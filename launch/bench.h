// The benchmarks as functions that return their measurements as JSON (the same object their
// --json writes) and print their tables to `out`, so `dpt bench report` can run them in one
// process and gather one report. The dpt subcommands call them with stdout.
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>

#include "launch/commands.h"

namespace dpt {

// dpt bench step: fp32 (and bf16 where the CPU has it) training step, phases, energy, plain GEMMs.
// `world`: this worker's place (under mpirun each picks its device as `dpt train` does: local rank
// k owns GPU k, CPU workers of a node share its CPUs); the default is a world of one.
nlohmann::json bench_step(const BenchStepArgs& args, std::FILE* out, const WorldInfo& world = {});

// dpt bench inference: fp32 vs int8 latency and throughput, plain GEMMs.
nlohmann::json bench_inference(const BenchInferenceArgs& args, std::FILE* out);

}  // namespace dpt
