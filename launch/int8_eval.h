// Evaluation of an int8 model (core/int8_model.h) on a dataset, the int8 counterpart of the
// trainer's evaluate(): same batching, normalization and loss, one process.
#pragma once

#include <cstdint>

#include "core/config.pb.h"
#include "core/dataset.h"
#include "core/int8_model.h"
#include "launch/trainer.h"

namespace dpt {

// Loss and accuracy of `model` over all of `dataset`, in batches of `batch_size`.
EvalResult evaluate_int8(Int8Model& model, Device& device, const Dataset& dataset,
                         const Normalization& normalization, proto::LossKind loss,
                         int64_t batch_size);

}  // namespace dpt
