// A sink for timed spans: the per-rank timeline (launch/trace_writer.h) records forward and
// backward per layer, each gradient bucket's all-reduce, the optimizer, data loading. Core and
// comm code hold a Tracer* that is null unless tracing is on, so a span costs one branch when off.
// Implementations are thread-safe (the gradient-sync thread records too).
#pragma once

#include <chrono>
#include <string>

namespace dpt {

class Tracer {
 public:
  using Clock = std::chrono::steady_clock;
  virtual ~Tracer() = default;
  // One completed span on the calling thread.
  virtual void span(const char* category, const std::string& name, Clock::time_point begin,
                    Clock::time_point end) = 0;
};

// Records [construction, destruction) as one span when `tracer` is not null.
class TraceSpan {
 public:
  TraceSpan(Tracer* tracer, const char* category, std::string name)
      : tracer_(tracer), category_(category) {
    if (tracer_ == nullptr) return;
    name_ = std::move(name);
    begin_ = Tracer::Clock::now();
  }
  ~TraceSpan() {
    if (tracer_ != nullptr) tracer_->span(category_, name_, begin_, Tracer::Clock::now());
  }
  TraceSpan(const TraceSpan&) = delete;
  TraceSpan& operator=(const TraceSpan&) = delete;

 private:
  Tracer* tracer_;
  const char* category_;
  std::string name_;
  Tracer::Clock::time_point begin_;
};

}  // namespace dpt
