// GemmPlanCache: the bounded, least-recently-used map from a GEMM's plan key (everything that
// changes how cuBLASLt would run it: shape, strides, number formats, epilogue, operand
// alignments, workspace) to what was set up for it, so the set-up (descriptors, layouts and the
// algorithm heuristic: tens of microseconds of host time) happens once per key, not per call.
// It knows nothing of CUDA: the CUDA GEMM (devices/cuda/cuda_gemm.cpp) derives its plans from
// GemmPlan; a key whose set-up found no algorithm is kept with a null plan, so the caller does
// not ask again. Not thread-safe: its owner (CudaDevice) serialises use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <unordered_map>

namespace dpt {

// What a plan depends on. The number formats and the epilogue are the foreign library's enum
// values as integers (this header stays CUDA-free), "no epilogue" included (cuBLASLt's
// CUBLASLT_EPILOGUE_DEFAULT is 1, not 0).
struct GemmPlanKey {
  int64_t m = 0, n = 0, k = 0;
  bool trans_a = false, trans_b = false;
  int64_t lda = 0, ldb = 0, ldc = 0;  // row strides of A and B as multiplied, and of C
  int32_t input_type = 0;             // A's and B's element type
  int32_t compute_type = 0;
  int32_t epilogue = 0;
  // Alignment in bytes of the epilogue's vector (bias or bias gradient), 0 without one: it was
  // set when the algorithm was chosen, so a vector aligned differently gets its own plan.
  uint32_t epilogue_align = 0;
  // Alignment in bytes (a power of two up to 256) of A, B, C and D as the library names them.
  uint32_t align[4] = {0, 0, 0, 0};
  uint64_t workspace_bytes = 0;

  bool operator==(const GemmPlanKey& other) const;
};

struct GemmPlanKeyHash {
  std::size_t operator()(const GemmPlanKey& key) const;
};

// Whatever a backend keeps for one key (descriptors and the chosen algorithm); destroyed when
// the cache evicts or clears it.
class GemmPlan {
 public:
  virtual ~GemmPlan() = default;
};

class GemmPlanCache {
 public:
  // Holds at most `capacity` keys (> 0); inserting past it evicts the least recently used.
  explicit GemmPlanCache(std::size_t capacity);

  // A lookup: `found` is whether the key is cached; `plan` is its plan, null when its set-up
  // found none. A hit makes the key the most recently used.
  struct Lookup {
    bool found = false;
    GemmPlan* plan = nullptr;
  };
  Lookup find(const GemmPlanKey& key);
  // Stores `plan` (null: "no plan for this key") as the most recently used entry, replacing an
  // entry of the same key, evicting the least recently used past the capacity. Returns the
  // stored plan.
  GemmPlan* insert(const GemmPlanKey& key, std::unique_ptr<GemmPlan> plan);
  // Drops every plan (their owner does so before the library they hold handles of goes).
  void clear();

  std::size_t size() const { return entries_.size(); }
  std::size_t capacity() const { return capacity_; }
  int64_t hits() const { return hits_; }
  int64_t misses() const { return misses_; }
  int64_t evictions() const { return evictions_; }

 private:
  struct Entry {
    GemmPlanKey key;
    std::unique_ptr<GemmPlan> plan;
  };
  std::size_t capacity_;
  std::list<Entry> entries_;  // most recently used first
  std::unordered_map<GemmPlanKey, std::list<Entry>::iterator, GemmPlanKeyHash> index_;
  int64_t hits_ = 0, misses_ = 0, evictions_ = 0;
};

}  // namespace dpt
