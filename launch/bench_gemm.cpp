// Plain GEMM timings for `dpt bench step` (launch/bench_gemm.h).
#include "launch/bench_gemm.h"

#include <algorithm>
#include <chrono>
#include <functional>

#include "core/bf16.h"
#include "core/gemm_bf16.h"
#include "core/random.h"

namespace dpt {
namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

struct Operands {
  std::vector<std::vector<float>> a, b, c;
};

// Random operands in [-0.5, 0.5) for every shape.
Operands make_operands(const std::vector<GemmShape>& shapes) {
  Operands ops;
  RandomStream random(7, 0);
  for (const GemmShape& s : shapes) {
    ops.a.emplace_back(static_cast<std::size_t>(s.m * s.k));
    ops.b.emplace_back(static_cast<std::size_t>(s.k * s.n));
    ops.c.emplace_back(static_cast<std::size_t>(s.m * s.n));
    for (float& x : ops.a.back()) x = static_cast<float>(random.uniform() - 0.5);
    for (float& x : ops.b.back()) x = static_cast<float>(random.uniform() - 0.5);
  }
  return ops;
}

// Median seconds of each of `runs`, taking turns: warmup untimed rounds, then reps timed ones.
std::vector<double> time_in_turns(int64_t warmup, int64_t reps,
                                  const std::vector<std::function<void()>>& runs) {
  std::vector<std::vector<double>> times(runs.size());
  for (int64_t r = 0; r < warmup + reps; ++r) {
    for (std::size_t i = 0; i < runs.size(); ++i) {
      const auto start = Clock::now();
      runs[i]();
      const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
      if (r >= warmup) times[i].push_back(seconds);
    }
  }
  std::vector<double> medians;
  for (auto& t : times) medians.push_back(median(t));
  return medians;
}

std::vector<uint16_t> bf16_copy(const std::vector<float>& values) {
  std::vector<uint16_t> copy(values.size());
  to_bf16(values.data(), copy.data(), static_cast<int64_t>(values.size()));
  return copy;
}

}  // namespace

std::vector<GemmShape> step_gemms(const Model& model, int64_t batch, int64_t micro) {
  std::vector<GemmShape> shapes;
  for (int64_t offset = 0; offset < batch; offset += micro) {
    const int64_t rows = std::min(micro, batch - offset);
    for (std::size_t i = 0; i < model.layers().size(); ++i) {
      const Layer& layer = *model.layers()[i];
      if (layer.num_params() == 0) continue;
      const int64_t in = layer.input_size(), out = layer.output_size();
      shapes.push_back(dense_gemm_shape(false, true, rows, out, in));
      shapes.push_back(dense_gemm_shape(true, false, out, in, rows));
      if (i > 0) shapes.push_back(dense_gemm_shape(false, false, rows, in, out));
    }
  }
  return shapes;
}

double gemm_flops(const std::vector<GemmShape>& shapes) {
  double flops = 0;
  for (const GemmShape& s : shapes) flops += 2.0 * s.m * s.n * s.k;
  return flops;
}

double time_sgemms(const std::vector<GemmShape>& shapes, int threads, CpuGemmLibrary library,
                   int64_t warmup, int64_t reps) {
  CpuDevice device(CpuDeviceOptions{threads, library});
  Operands ops = make_operands(shapes);
  return time_in_turns(warmup, reps, {[&] {
                         for (std::size_t i = 0; i < shapes.size(); ++i) {
                           gemm(device, shapes[i], 1.0f, ops.a[i].data(), ops.b[i].data(), 0.0f,
                                ops.c[i].data());
                         }
                       }})
      .front();
}

SgemmVsBf16 time_sgemm_vs_bf16(const std::vector<GemmShape>& shapes, int threads, int64_t warmup,
                               int64_t reps) {
  CpuDevice device(CpuDeviceOptions{threads, CpuGemmLibrary::kOneDnn});
  Operands ops = make_operands(shapes);
  std::vector<std::vector<uint16_t>> a, b;
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    a.push_back(bf16_copy(ops.a[i]));
    b.push_back(bf16_copy(ops.b[i]));
  }
  Bf16Gemm bf16;
  SgemmVsBf16 result;
  if (!shapes.empty()) result.implementation = bf16.implementation(shapes.front());
  const std::vector<double> medians = time_in_turns(
      warmup, reps,
      {[&] {
         for (std::size_t i = 0; i < shapes.size(); ++i) {
           gemm(device, shapes[i], 1.0f, ops.a[i].data(), ops.b[i].data(), 0.0f, ops.c[i].data());
         }
       },
       [&] {
         for (std::size_t i = 0; i < shapes.size(); ++i) {
           bf16.run(shapes[i], a[i].data(), b[i].data(), 0.0f, ops.c[i].data());
         }
       }});
  result.sgemm_s = medians[0];
  result.bf16_s = medians[1];
  return result;
}

}  // namespace dpt
