// Measured ceilings of a CPU, against which `dpt bench report` states what fraction the training
// step and its GEMMs reach: the fused multiply-add throughput of the widest vector unit this CPU
// runs (a register-resident kernel compiled for AVX-512, AVX2+FMA and baseline x86-64, picked at
// run time by the CPU's own feature bits), and the memory bandwidth of a STREAM-style triad on
// arrays far larger than the caches. Measured, never derived from a model number: a vendor's
// peak assumes clocks and FMA-unit counts Linux does not report.
#pragma once

#include <cstdint>

namespace dpt {

struct FmaPeak {
  double gflops = 0;     // best of the repeats, all threads together
  int threads = 0;       // OpenMP threads that ran the kernel
  const char* isa = "";  // the kernel variant that ran: "avx512f", "avx2+fma" or "baseline"
};

// Runs the FMA kernel on `threads` OpenMP threads (0: the current OpenMP default) for about
// `seconds` in all, returning the best repeat.
FmaPeak measure_fma_peak(int threads, double seconds = 0.3);

struct TriadBandwidth {
  double gbytes_per_s = 0;  // 12 bytes per element (two float loads, one store), best repeat
  int64_t array_bytes = 0;  // bytes of each of the three arrays
};

// a[i] = b[i] + s * c[i] over three float arrays of `array_bytes` each, on `threads` OpenMP
// threads, first-touched by the threads that use them; best of `repeats`.
TriadBandwidth measure_triad(int threads, int64_t array_bytes = int64_t{256} << 20,
                             int repeats = 5);

// The kernels, exposed so tests can check they compute what they claim.
// Applies acc[j] = fma(acc[j], x, y) `iterations` times to each of the kFmaLanes accumulators.
constexpr int kFmaLanes = 128;
void fma_kernel(float* acc, float x, float y, int64_t iterations);
const char* fma_kernel_isa();
void triad_kernel(float* a, const float* b, const float* c, float s, int64_t n);

}  // namespace dpt
