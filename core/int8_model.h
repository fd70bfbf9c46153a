// Int8 inference of a QuantizedModel (core/quantize.h): fp32 inputs in, fp32 logits out, every
// Dense layer an int8 GEMM (core/int8_matmul, oneDNN). Between two Dense layers the activations
// stay 8-bit when they can: a layer followed by nothing or by a lone ReLU writes the next layer's
// u8/s8 codes directly from the GEMM (scales, bias, ReLU and zero point folded into the one
// primitive); any other activation (gelu, tanh, ...) goes through fp32 and is requantized. Input
// zero points are folded into the bias (b' = b / (s_x s_w) - z_x sum_k q_w), so the GEMM is
// always a plain u8 x s8 (or s8 x s8) product. CPU only; not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/int8_matmul.h"
#include "core/quantize.h"
#include "core/tensor.h"

namespace dpt {

class Int8Model {
 public:
  // Throws kInternal when `device` is not the CPU or the model is inconsistent.
  Int8Model(Device& device, const QuantizedModel& model);
  ~Int8Model();
  Int8Model(const Int8Model&) = delete;
  Int8Model& operator=(const Int8Model&) = delete;

  int64_t input_size() const { return input_size_; }
  int64_t output_size() const;

  // input f32 [B, input_size] -> logits f32 [B, output_size]; the view stays valid until the next
  // forward(). Results do not depend on B or on the other rows of the batch.
  const Tensor& forward(const Tensor& input);

 private:
  struct Stage {
    QuantParams input;
    std::unique_ptr<Int8Matmul> matmul;
    bool writes_codes = false;                // the GEMM writes the next stage's codes
    std::vector<ActivationSpec> activations;  // applied in fp32 after the GEMM
  };
  Device& device_;
  int64_t input_size_;
  int64_t max_width_;
  std::vector<ActivationSpec> input_activations_;
  std::vector<Stage> stages_;
  std::vector<uint8_t> codes_[2];  // u8 or s8 codes, ping-pong between stages
  Tensor input_buffer_, hidden_buffer_, logits_buffer_, logits_;
};

}  // namespace dpt
