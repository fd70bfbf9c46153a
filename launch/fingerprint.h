// Start-up check that every rank runs the same program on the same config, model and data (the
// RELIABILITY.md scenario "configs differ between ranks"): each rank hashes each item, the hashes
// are all-gathered, and any difference stops every rank with a message naming the differing ranks
// and item, and for the config the first differing field.
#pragma once

#include <string>

#include "comm/communicator.h"
#include "core/config.pb.h"
#include "core/dataset.h"
#include "core/model.h"

namespace dpt {

// Throws dpt::Error(kConfig) on every rank when any rank differs from rank 0. A collective: every
// rank must call it. `test` may be null (no test set). The config's `device` is not compared: it
// says how each worker runs (threads, GEMM library) and may differ between heterogeneous nodes;
// except fp16 loss scaling (device.precision FP16 and device.loss_scale), which changes the
// gradients the ranks sum: every rank must scale alike or none.
void check_same_run(Communicator& comm, const proto::Config& config, const Model& model,
                    const Dataset& train, const Dataset* test);

// "fnv1a:0123456789abcdef": a hash of the dataset's shape, labels and inputs, stored in
// checkpoints so a resume on other data is refused.
std::string dataset_fingerprint(const Dataset& dataset);

// Rank 0's `text` on every rank (a collective; the others' `text` is ignored).
std::string broadcast_text(Communicator& comm, const std::string& text);

// FNV-1a 64-bit hash of bytes, chained from `seed`.
uint64_t fnv1a(const void* data, std::size_t bytes, uint64_t seed = 0xcbf29ce484222325ull);

}  // namespace dpt
