// measure_gpu_layers on a CUDA build (launch/bench_gpu.h): the per-layer table. Synthetic data of
// the config's shapes on the first usable GPU. Per Dense layer, ours (cuda_dense_forward +
// cuda_dense_backward, on buffers of their own, not inside a training step) and plain (the same
// two or three GEMMs through cuda_gemm, 16-bit operands converted beforehand and no epilogue)
// take turns, kRounds rounds of kRepeats calls each, medians kept. What each side pays, so the
// ratio stays honest: in bf16 / fp16 ours rounds W, x and dz once each per call (W as in a step
// of one micro-batch; the layer keeps x16 and W16 from forward for backward, as core/dense.cpp
// does), adds the bias, applies the activation and computes the bias gradient; plain does none of
// that (its 16-bit operands are rounded once, untimed, and it has no bias), so everything but the
// three GEMMs counts against ours. The training step itself is timed by launch/bench_gpu_step.cpp.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>

#include "core/gemm.h"
#include "core/random.h"
#include "devices/cuda/cuda_ops.h"
#include "devices/cuda_support.h"
#include "devices/error.h"
#include "launch/bench_gpu.h"

namespace dpt {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kRounds = 5;
constexpr int kRepeats = 10;

struct DenseLayer {
  GpuDenseLayer shape;
  CudaActivationSpec spec;  // identity when no activation layer follows
};

CudaActivationSpec activation_spec(const GpuDenseLayer& layer) {
  CudaActivationSpec spec;
  if (!layer.has_activation) return spec;
  spec.negative_slope = layer.activation.negative_slope();
  switch (layer.activation.kind()) {
    case proto::RELU:
      spec.kind = CudaActivation::kRelu;
      break;
    case proto::LEAKY_RELU:
      spec.kind = CudaActivation::kLeakyRelu;
      break;
    case proto::GELU:
      spec.kind = CudaActivation::kGelu;
      break;
    case proto::TANH:
      spec.kind = CudaActivation::kTanh;
      break;
    case proto::SIGMOID:
      spec.kind = CudaActivation::kSigmoid;
      break;
  }
  return spec;
}

CudaGemmInput gemm_input(GpuPrecision precision) {
  switch (precision) {
    case GpuPrecision::kFp32:
      return CudaGemmInput::kFp32;
    case GpuPrecision::kTf32:
      return CudaGemmInput::kTf32;
    case GpuPrecision::kFp16:
      return CudaGemmInput::kFp16;
    case GpuPrecision::kBf16:
      break;
  }
  return CudaGemmInput::kBf16;
}

// Device buffers that live until the bench ends.
class Buffers {
 public:
  explicit Buffers(CudaDevice& device) : device_(device) {}
  ~Buffers() {
    for (void* ptr : buffers_) device_.deallocate(ptr);
  }
  // n floats of small random values (a tiled block, so filling 8192^2 weights stays cheap).
  float* floats(int64_t n, double scale = 0.1) {
    float* ptr = static_cast<float*>(allocate(n * sizeof(float)));
    if (block_.empty()) {
      RandomStream random(7, 0);
      block_.resize(std::size_t{1} << 20);
      for (float& v : block_) v = static_cast<float>(random.normal());
    }
    std::vector<float> host(static_cast<std::size_t>(n));
    for (std::size_t i = 0; i < host.size(); ++i) {
      host[i] = static_cast<float>(scale * block_[(i * 7919) % block_.size()]);
    }
    device_.copy_from_host(ptr, host.data(), host.size() * sizeof(float));
    return ptr;
  }
  uint16_t* halves(int64_t n) { return static_cast<uint16_t*>(allocate(n * 2)); }

 private:
  void* allocate(int64_t bytes) {
    buffers_.push_back(device_.allocate(static_cast<std::size_t>(std::max<int64_t>(bytes, 4))));
    return buffers_.back();
  }
  CudaDevice& device_;
  std::vector<void*> buffers_;
  std::vector<float> block_;
};

// One layer's tensors for one micro-batch of `rows`.
struct LayerData {
  float *x, *weight, *bias, *z, *y, *dy, *dz, *grad_weight, *grad_bias, *dx;
  uint16_t *weight16, *x16;  // the layer's kept 16-bit copies (bf16 / fp16 only; else null)
};

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// Median seconds per call of each of `runs`, taking turns round by round.
std::vector<double> time_in_turns(CudaDevice& device,
                                  const std::vector<std::function<void()>>& runs) {
  std::vector<std::vector<double>> times(runs.size());
  for (int round = 0; round <= kRounds; ++round) {  // round 0 warms up
    for (std::size_t i = 0; i < runs.size(); ++i) {
      device.synchronize();
      const auto start = Clock::now();
      for (int r = 0; r < kRepeats; ++r) runs[i]();
      device.synchronize();
      const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
      if (round > 0) times[i].push_back(seconds / kRepeats);
    }
  }
  std::vector<double> medians;
  for (auto& t : times) medians.push_back(median(t));
  return medians;
}

}  // namespace

GpuBenchResult measure_gpu_layers(const proto::Config& config, int gpu) {
  const GpuProbe probe = probe_gpus();
  const std::vector<GpuInfo> gpus = usable_gpus(probe);
  const auto info = std::find_if(gpus.begin(), gpus.end(),
                                 [gpu](const GpuInfo& usable) { return usable.index == gpu; });
  DPT_CHECK_AS(ErrorKind::kConfig, info != gpus.end())
      << "device.kind: CUDA requested, but GPU cuda:" << gpu << " is not usable: " << probe.reason
      << "; use AUTO or CPU";
  CudaDevice device(gpu);
  GpuBenchResult result;
  result.gpu_name = info->name;
  result.device = device.name();
  result.precision = gpu_precision(config.device().precision());
  result.peak = gpu_peak(result.gpu_name);
  if (result.peak.known) result.peak_tflops = peak_for(result.peak.tflops, result.precision);
  const int64_t batch = config.train().batch_size();
  const int64_t micro =
      config.train().micro_batch_size() > 0 ? config.train().micro_batch_size() : batch;
  const CudaGemmInput input = gemm_input(result.precision);
  const bool half = input == CudaGemmInput::kBf16 || input == CudaGemmInput::kFp16;

  std::vector<DenseLayer> layers;
  for (const GpuDenseLayer& shape : gpu_dense_layers(config)) {
    layers.push_back({shape, activation_spec(shape)});
  }
  const int64_t rows = micro;
  Buffers buffers(device);
  std::vector<LayerData> data;
  float* x = buffers.floats(rows * layers.front().shape.in, 1.0);
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const GpuDenseLayer& l = layers[i].shape;
    LayerData d;
    d.x = i == 0 ? x : data.back().y;
    d.weight = buffers.floats(l.out * l.in, 1.0 / std::sqrt(static_cast<double>(l.in)));
    d.bias = l.bias ? buffers.floats(l.out) : nullptr;
    d.z = buffers.floats(rows * l.out);
    d.y = buffers.floats(rows * l.out);
    d.dy = buffers.floats(rows * l.out);
    d.dz = buffers.floats(rows * l.out);
    d.grad_weight = buffers.floats(l.out * l.in, 0.0);
    d.grad_bias = l.bias ? buffers.floats(l.out, 0.0) : nullptr;
    d.dx = i == 0 ? nullptr : data.back().dy;
    d.weight16 = half ? buffers.halves(l.out * l.in) : nullptr;
    d.x16 = half ? buffers.halves(rows * l.in) : nullptr;
    data.push_back(d);
  }
  // W is rounded afresh per call, as in a step's first micro-batch.
  auto forward = [&](std::size_t i) {
    const GpuDenseLayer& l = layers[i].shape;
    const LayerData& d = data[i];
    cuda_dense_forward(device, layers[i].spec, d.x, d.weight, d.bias, d.z, d.y, rows, l.in, l.out,
                       input, CudaDense16{d.weight16, false, d.x16});
  };
  auto backward = [&](std::size_t i) {
    const GpuDenseLayer& l = layers[i].shape;
    const LayerData& d = data[i];
    cuda_dense_backward(device, layers[i].spec, d.x, d.weight, d.z, d.y, d.dy, d.dz, d.grad_weight,
                        d.grad_bias, d.dx, rows, l.in, l.out, input,
                        CudaDense16{d.weight16, true, d.x16});
  };

  // Per layer: ours against plain GEMMs of the same shapes, in turns.
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const GpuDenseLayer& l = layers[i].shape;
    const LayerData& d = data[i];
    forward(i);
    backward(i);  // dz now holds real values for the plain GEMMs
    CudaGemmOptions options;
    options.input = input;
    uint16_t *x16 = nullptr, *w16 = nullptr, *dz16 = nullptr;
    if (half) {
      x16 = buffers.halves(rows * l.in);
      w16 = buffers.halves(l.out * l.in);
      dz16 = buffers.halves(rows * l.out);
      cuda_round_to_16bit(device, input, d.x, rows, l.in, l.in, x16);
      cuda_round_to_16bit(device, input, d.weight, l.out, l.in, l.in, w16);
      cuda_round_to_16bit(device, input, d.dz, rows, l.out, l.out, dz16);
    }
    auto gemm = [&](const GemmShape& s, const float* a, const uint16_t* a16, const float* b,
                    const uint16_t* b16, float beta, float* c) {
      CudaGemmOptions o = options;
      o.a16 = a16, o.b16 = b16;
      cuda_gemm(device, s, 1.0f, a, b, beta, c, o);
    };
    auto plain = [&] {
      gemm(dense_gemm_shape(false, true, rows, l.out, l.in), d.x, x16, d.weight, w16, 0.0f, d.z);
      gemm(dense_gemm_shape(true, false, l.out, l.in, rows), d.dz, dz16, d.x, x16, 1.0f,
           d.grad_weight);
      if (d.dx != nullptr) {
        gemm(dense_gemm_shape(false, false, rows, l.in, l.out), d.dz, dz16, d.weight, w16, 0.0f,
             d.dx);
      }
    };
    const std::vector<double> medians = time_in_turns(device, {[&] {
                                                                 forward(i);
                                                                 backward(i);
                                                               },
                                                               plain});
    GpuLayerTiming timing;
    timing.name = l.name;
    timing.rows = rows, timing.in = l.in, timing.out = l.out;
    timing.flops = 2.0 * rows * l.in * l.out * (d.dx != nullptr ? 3 : 2);
    timing.ours_s = medians[0];
    timing.plain_s = medians[1];
    result.layers.push_back(timing);
  }
  return result;
}

}  // namespace dpt
