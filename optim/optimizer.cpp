// The optimizer factory (a switch over the config's oneof), the step-argument check shared by the
// optimizers, and gradient clipping by global L2 norm. The norm is summed in double over fixed
// chunks so that it is bitwise the same for any OpenMP thread count; on a CUDA device the same
// chunks are summed by gpu_sum_squares and the scaling is gpu_scale (devices/gpu_ops.h).
#include "optim/optimizer.h"

#include <cmath>
#include <vector>

#include "devices/error.h"
#include "devices/gpu_ops.h"
#include "optim/adam.h"
#include "optim/sgd.h"

namespace dpt {
namespace {

// Elements per chunk of the norm's sum. The chunking, not the thread count, fixes the order of
// additions; a multiple of kNormLanes so only the last chunk has a tail.
constexpr int64_t kNormChunk = 4096;
// Independent accumulators per chunk: a fixed order that still lets GCC vectorise the sum.
constexpr int kNormLanes = 8;

double chunk_sum_of_squares(const float* __restrict x, int64_t begin, int64_t end) {
  double lanes[kNormLanes] = {};
  int64_t i = begin;
  for (; i + kNormLanes <= end; i += kNormLanes) {
    for (int j = 0; j < kNormLanes; ++j) {
      const double value = x[i + j];
      lanes[j] += value * value;
    }
  }
  for (int j = 0; i < end; ++i, ++j) {
    const double value = x[i];
    lanes[j] += value * value;
  }
  double sum = 0;
  for (int j = 0; j < kNormLanes; ++j) sum += lanes[j];
  return sum;
}

void scale(float* __restrict x, int64_t n, float factor) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) x[i] *= factor;
}

}  // namespace

std::unique_ptr<Optimizer> make_optimizer(Device& device, const proto::OptimizerConfig& config,
                                          int64_t num_params) {
  DPT_CHECK_AS(ErrorKind::kConfig, config.lr() > 0 && std::isfinite(config.lr()))
      << "optimizer.lr: must be > 0 (got " << config.lr() << ")";
  DPT_CHECK_AS(ErrorKind::kConfig,
               config.clip_grad_norm() >= 0 && std::isfinite(config.clip_grad_norm()))
      << "optimizer.clip_grad_norm: must be >= 0 (got " << config.clip_grad_norm() << ")";
  switch (config.kind_case()) {
    case proto::OptimizerConfig::kSgd:
      return std::make_unique<Sgd>(device, config.sgd(), num_params);
    case proto::OptimizerConfig::kAdam:
      return std::make_unique<Adam>(device, config.adam(), /*decoupled=*/false, num_params);
    case proto::OptimizerConfig::kAdamw:
      return std::make_unique<Adam>(device, config.adamw(), /*decoupled=*/true, num_params);
    case proto::OptimizerConfig::KIND_NOT_SET:
      return std::make_unique<Sgd>(device, proto::SgdConfig(), num_params);
  }
  DPT_THROW(ErrorKind::kInternal) << "optimizer: unknown kind case " << config.kind_case();
}

void check_step_tensors(const char* optimizer, const Device& device, const Tensor& params,
                        const Tensor& grads, int64_t num_params) {
  DPT_CHECK(params.defined() && grads.defined())
      << optimizer << ": params or grads is an undefined tensor";
  DPT_CHECK(params.dtype() == DType::kF32 && grads.dtype() == DType::kF32 &&
            params.numel() == num_params && grads.numel() == num_params)
      << optimizer << ": params is " << dtype_name(params.dtype()) << shape_string(params.shape())
      << " and grads is " << dtype_name(grads.dtype()) << shape_string(grads.shape())
      << "; both must be float32 with " << num_params << " elements";
  DPT_CHECK(params.device().kind() == device.kind() && grads.device().kind() == device.kind())
      << optimizer << ": params on " << params.device().name() << ", grads on "
      << grads.device().name() << "; the optimizer's state is on " << device.name();
}

double global_norm(const Tensor& grads) {
  DPT_CHECK(grads.defined() && grads.dtype() == DType::kF32)
      << "global_norm: grads must be a float32 tensor";
  const float* x = grads.data<float>();
  const int64_t n = grads.numel();
  if (grads.device().kind() == DeviceKind::kCuda) {
    return std::sqrt(gpu_sum_squares(grads.device(), x, n));
  }
  const int64_t chunks = (n + kNormChunk - 1) / kNormChunk;
  std::vector<double> partial(static_cast<std::size_t>(chunks));
  double* partial_data = partial.data();
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kNormChunk;
    const int64_t end = begin + kNormChunk < n ? begin + kNormChunk : n;
    partial_data[c] = chunk_sum_of_squares(x, begin, end);
  }
  double sum = 0;
  for (double chunk : partial) sum += chunk;
  return std::sqrt(sum);
}

double clip_grad_norm(Tensor& grads, double max_norm) {
  DPT_CHECK(max_norm > 0) << "clip_grad_norm: max_norm must be > 0 (got " << max_norm
                          << "); optimizer.clip_grad_norm = 0 means do not call it";
  const double norm = global_norm(grads);
  if (std::isfinite(norm) && norm > max_norm) {
    const float factor = static_cast<float>(max_norm / norm);
    if (grads.device().kind() == DeviceKind::kCuda) {
      gpu_scale(grads.device(), grads.data<float>(), grads.numel(), factor);
    } else {
      scale(grads.data<float>(), grads.numel(), factor);
    }
  }
  return norm;
}

}  // namespace dpt
