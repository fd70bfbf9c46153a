// FMA throughput and triad bandwidth probes (devices/cpu_peak.h). The FMA kernel is compiled
// three times by GCC function multi-versioning (target_clones); the loader's ifunc resolver picks
// the widest the CPU supports, so one binary measures any x86-64 honestly.
#include "devices/cpu_peak.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <vector>

#include "devices/error.h"

namespace dpt {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

int resolve_threads(int threads) { return threads > 0 ? threads : omp_get_max_threads(); }

}  // namespace

// 128 independent accumulators: 8 AVX-512 or 16 AVX2 registers, enough chains to cover the FMA
// latency on two pipes. std::fma is one rounding, so every variant gives identical results.
__attribute__((target_clones("avx512f", "arch=haswell", "default"))) void fma_kernel(
    float* acc, float x, float y, int64_t iterations) {
  float local[kFmaLanes];
  for (int j = 0; j < kFmaLanes; ++j) local[j] = acc[j];
  for (int64_t i = 0; i < iterations; ++i) {
    for (int j = 0; j < kFmaLanes; ++j) local[j] = std::fma(local[j], x, y);
  }
  for (int j = 0; j < kFmaLanes; ++j) acc[j] = local[j];
}

const char* fma_kernel_isa() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return "avx512f";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "avx2+fma";
  return "baseline";
}

void triad_kernel(float* a, const float* b, const float* c, float s, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) a[i] = b[i] + s * c[i];
}

FmaPeak measure_fma_peak(int threads, double seconds) {
  threads = resolve_threads(threads);
  DPT_CHECK(seconds > 0) << "measure_fma_peak: seconds must be > 0";
  // Calibrate one repeat to about a tenth of the budget on one thread, then repeat on all.
  std::vector<float> probe(kFmaLanes, 1.0f);
  int64_t iterations = 1 << 14;
  for (;;) {
    const auto start = Clock::now();
    fma_kernel(probe.data(), 0.999f, 0.001f, iterations);
    if (seconds_since(start) > seconds / 10 || iterations > (int64_t{1} << 34)) break;
    iterations *= 2;
  }
  double best = 0;
  const auto budget_start = Clock::now();
  do {
    std::vector<float> acc(static_cast<std::size_t>(threads) * kFmaLanes, 1.0f);
    const auto start = Clock::now();
#pragma omp parallel num_threads(threads)
    fma_kernel(acc.data() + omp_get_thread_num() * kFmaLanes, 0.999f, 0.001f, iterations);
    const double elapsed = seconds_since(start);
    best = std::max(best, 2.0 * kFmaLanes * static_cast<double>(iterations) * threads / elapsed);
  } while (seconds_since(budget_start) < seconds);
  return FmaPeak{best / 1e9, threads, fma_kernel_isa()};
}

TriadBandwidth measure_triad(int threads, int64_t array_bytes, int repeats) {
  threads = resolve_threads(threads);
  DPT_CHECK(array_bytes >= 4096 && repeats > 0) << "measure_triad: bad array size or repeats";
  const int64_t n = array_bytes / static_cast<int64_t>(sizeof(float));
  auto alloc = [n] { return std::unique_ptr<float[]>(new float[static_cast<std::size_t>(n)]); };
  std::unique_ptr<float[]> a = alloc(), b = alloc(), c = alloc();
  float *pa = a.get(), *pb = b.get(), *pc = c.get();
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t i = 0; i < n; ++i) {
    pa[i] = 0.0f;
    pb[i] = 1.0f;
    pc[i] = 2.0f;
  }
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  double best = 0;
  for (int r = 0; r < repeats + 1; ++r) {  // the first repeat warms the pages and is not counted
    const auto start = Clock::now();
    triad_kernel(pa, pb, pc, 3.0f, n);
    const double elapsed = seconds_since(start);
    if (r > 0) best = std::max(best, 12.0 * static_cast<double>(n) / elapsed);
  }
  omp_set_num_threads(saved);
  DPT_CHECK(pa[n - 1] == 7.0f) << "measure_triad: wrong result " << pa[n - 1];
  return TriadBandwidth{best / 1e9, n * static_cast<int64_t>(sizeof(float))};
}

}  // namespace dpt
