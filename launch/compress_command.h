// dpt compress CONFIG --weights W --out OUT: prunes a trained model as config compress.prune says
// (with fine-tuning rounds through the real trainer), writes the result (and, when structured
// pruning shrank the layers, its config next to it), and prints a before/after table: accuracy,
// size on disk, latency and throughput (launch/compress_table.h). Works under mpirun as train does.
#pragma once

#include <string>
#include <vector>

#include "launch/world.h"

namespace dpt {

struct CompressArgs {
  std::string config;
  std::string weights;                 // the trained model (a run's model.h5)
  std::string out;                     // the compressed weights file to write
  std::string run_dir;                 // fine-tuning runs; default: OUT's stem + "_finetune"
  std::vector<std::string> overrides;  // --set a.b=value
  std::string json;                    // also write the table as JSON here when not empty
};

// Returns the exit code (0); errors are thrown as dpt::Error.
int run_compress(const CompressArgs& args, const WorldInfo& world);

}  // namespace dpt
