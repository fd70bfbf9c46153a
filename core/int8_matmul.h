// One int8 GEMM on the CPU through oneDNN's matmul primitive (VNNI where the CPU has it):
// dst[i, j] = post(scales[j] * (sum_k src[i, k] * weight[j, k] + bias[j])), src u8 or s8, weight
// s8 [output_size, input_size] (PyTorch's layout, as in Dense), int32 accumulation, bias f32 in
// accumulator units, post = ReLU or identity, dst rounded to nearest-even and saturated to u8/s8,
// or stored as f32. The building block of core/int8_model and of `dpt bench inference`'s plain
// int8 GEMM. One primitive per batch size, created on first use and kept; weights are reordered
// once into the layout oneDNN prefers. Not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace dpt {

enum class Int8Type { kU8, kS8, kF32 };

struct Int8MatmulSpec {
  int64_t input_size = 0;        // K
  int64_t output_size = 0;       // N
  Int8Type src = Int8Type::kU8;  // kU8 or kS8
  Int8Type dst = Int8Type::kF32;
  std::vector<int8_t> weight;  // [output_size, input_size]
  std::vector<float> scales;   // [output_size], > 0
  std::vector<float> bias;     // [output_size] in accumulator units, or empty for none
  bool relu = false;
};

class Int8Matmul {
 public:
  // Checks the spec's sizes (kInternal naming them).
  explicit Int8Matmul(Int8MatmulSpec spec);
  ~Int8Matmul();
  Int8Matmul(const Int8Matmul&) = delete;
  Int8Matmul& operator=(const Int8Matmul&) = delete;

  const Int8MatmulSpec& spec() const { return spec_; }
  // src: rows x input_size codes of the spec's src type; dst: rows x output_size of its dst type.
  // Both row-major and dense. rows may be 0. oneDNN failures throw kInternal.
  void run(const void* src, int64_t rows, void* dst);

 private:
  struct Impl;
  Int8MatmulSpec spec_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dpt
