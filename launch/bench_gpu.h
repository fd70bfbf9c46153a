// `dpt bench step` on a GPU (device.kind: CUDA, or AUTO where a GPU is usable). Two parts, in
// one run: (1) the real training step, launch/train_step.h through launch/bench_step_timer.h on
// the selected GPU exactly as `dpt train` runs it (model with dropout, loss, gradient norm and
// clipping, optimizer, batch uploads, and under mpirun the gradient sync), a synchronize after
// every step: samples/s, p50/p99, MFU (the step's GEMM flops / p50 / the GPU's datasheet peak,
// devices/gpu_peak.h) and the per-phase split from the GPU's timing events (PhaseClock);
// (2) per Dense layer, the TFLOP/s of its forward + backward kernels alone (devices/cuda
// cuda_dense_forward/backward on buffers of their own, not inside a step) next to plain cuBLASLt
// GEMMs of the same shapes on operands already in the GEMM's number format, in turns.
// The layer table needs a CUDA build (launch/bench_gpu_cuda.cpp; launch/bench_gpu_none.cpp
// otherwise); rendering is separate so tests can check the table and JSON with fake numbers.
#pragma once

#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/config.pb.h"
#include "devices/gpu_peak.h"
#include "launch/commands.h"
#include "launch/device_select.h"
#include "launch/train_step.h"

namespace dpt {

// A Dense layer of the model as the GPU bench runs it.
struct GpuDenseLayer {
  std::string name;  // core/config.h layer_name
  int64_t in = 0, out = 0;
  bool bias = true;
  bool has_activation = false;         // an activation layer follows it directly (fused on the CPU)
  proto::ActivationConfig activation;  // that layer's config, when has_activation
};

// The Dense layers of config.model in order, with their widths. Dropout is not run. Throws
// dpt::Error (kConfig) when there is none.
std::vector<GpuDenseLayer> gpu_dense_layers(const proto::Config& config);

struct GpuLayerTiming {
  std::string name;  // the layer's name (core/config.h layer_name)
  int64_t rows = 0, in = 0, out = 0;
  double flops = 0;    // 2 rows in out per GEMM: 3 GEMMs, 2 for the first layer
  double ours_s = 0;   // our forward + backward, median seconds
  double plain_s = 0;  // the same GEMMs as plain cuBLASLt calls, median seconds
};

// The GEMM number format of the GPU bench (devices/cuda CudaGemmInput, without CUDA's headers).
enum class GpuPrecision { kFp32, kTf32, kBf16, kFp16 };

struct GpuBenchResult {
  std::string gpu_name;  // as the CUDA runtime reports it
  std::string device;    // CudaDevice::name()
  GpuPrecision precision = GpuPrecision::kBf16;
  GpuPeak peak;
  double peak_tflops = 0;              // peak.tflops of `precision`; 0 when !peak.known
  std::vector<GpuLayerTiming> layers;  // the layers alone, on buffers of their own
  // The training step (TrainStep on the selected GPU, as `dpt train` runs it).
  std::string model_summary, optimizer;
  int64_t num_params = 0;
  int ranks = 1;  // workers summing gradients (mpirun), 1 alone
  int64_t batch = 0, micro = 0, steps = 0, warmup = 0;
  // GEMM flops of this GPU's part of one step: every Dense layer's forward + backward over its
  // share of the batch (the batch / ranks).
  double step_flops = 0;
  double p50 = 0, p99 = 0;  // seconds per step, a synchronize after each
  StepTimes phase_sum;      // the GPU's phase times summed over the `steps` measured steps
  // fp16 (device.precision FP16; both 0 otherwise): the loss scale after the measured steps and
  // the measured steps it skipped for inf/NaN gradients (they ran no optimizer update).
  double loss_scale = 0;
  int64_t loss_scale_skipped = 0;
};

// The GEMM number format device.precision selects on a GPU, as training uses it: PRECISION_AUTO
// gives float32 (core/model.cpp), the others their own format.
GpuPrecision gpu_precision(proto::Precision precision);
const char* gpu_precision_name(GpuPrecision precision);  // "fp32", "tf32", "bf16", "fp16"
// The entry of `tflops` for `precision`.
double peak_for(const GpuPeakTflops& tflops, GpuPrecision precision);

// Prints the table to `out` and returns the JSON of `result`.
nlohmann::json render_gpu_bench(const GpuBenchResult& result, std::FILE* out);

// The device facts (names, precision, peak) and the per-layer table, on GPU `gpu` (the CUDA
// ordinal of the step's device; a CudaDevice of its own). Throws dpt::Error (kConfig) when this
// build has no CUDA or that GPU is not usable, naming the reason.
GpuBenchResult measure_gpu_layers(const proto::Config& config, int gpu);

// dpt bench step on a GPU: the training step on `choice`'s device (a CUDA device), then the layer
// table; renders both and writes args.json when set (rank 0).
nlohmann::json bench_step_gpu(const BenchStepArgs& args, const proto::Config& config,
                              DeviceChoice choice, std::FILE* out);

}  // namespace dpt
