// bench_inference (see inference_bench.h): fixed call counts through time_alternating
// (launch/inference_timing.h) with one candidate.
#include "launch/inference_bench.h"

#include "devices/error.h"
#include "launch/inference_timing.h"

namespace dpt {

InferenceTiming bench_inference(const ForwardFn& forward, const InferenceBenchOptions& options) {
  DPT_CHECK(options.warmup >= 0 && options.latency_repeats > 0 && options.throughput_batch > 0 &&
            options.throughput_repeats > 0)
      << "bench_inference: bad options";
  // Exactly `repeats` timed calls after `warmup` untimed ones (no minimum duration).
  auto time_calls = [&](int64_t batch, int64_t repeats) {
    const TimingOptions timing{options.warmup, repeats, 0.0, repeats};
    return time_alternating({forward}, batch, timing).front();
  };
  InferenceTiming timing;
  const Timing latency = time_calls(1, options.latency_repeats);
  timing.p50_ms = latency.p50() * 1e3;
  timing.p99_ms = latency.p99() * 1e3;
  const Timing large = time_calls(options.throughput_batch, options.throughput_repeats);
  timing.throughput_batch = options.throughput_batch;
  const double median = large.p50();
  timing.samples_per_s = median > 0 ? static_cast<double>(options.throughput_batch) / median : 0.0;
  return timing;
}

}  // namespace dpt
