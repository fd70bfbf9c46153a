// GemmPlanCache: a list in recency order plus a hash index into it.
#include "devices/gemm_plan_cache.h"

#include <functional>

#include "devices/error.h"

namespace dpt {

bool GemmPlanKey::operator==(const GemmPlanKey& o) const {
  return m == o.m && n == o.n && k == o.k && trans_a == o.trans_a && trans_b == o.trans_b &&
         lda == o.lda && ldb == o.ldb && ldc == o.ldc && input_type == o.input_type &&
         compute_type == o.compute_type && epilogue == o.epilogue &&
         epilogue_align == o.epilogue_align && align[0] == o.align[0] && align[1] == o.align[1] &&
         align[2] == o.align[2] && align[3] == o.align[3] && workspace_bytes == o.workspace_bytes;
}

std::size_t GemmPlanKeyHash::operator()(const GemmPlanKey& key) const {
  // boost::hash_combine's mixing over every field.
  std::size_t seed = 0;
  auto mix = [&seed](uint64_t value) {
    seed ^= std::hash<uint64_t>{}(value) + 0x9e3779b97f4a7c15ull + (seed << 6) + (seed >> 2);
  };
  mix(static_cast<uint64_t>(key.m));
  mix(static_cast<uint64_t>(key.n));
  mix(static_cast<uint64_t>(key.k));
  mix((key.trans_a ? 1u : 0u) | (key.trans_b ? 2u : 0u));
  mix(static_cast<uint64_t>(key.lda));
  mix(static_cast<uint64_t>(key.ldb));
  mix(static_cast<uint64_t>(key.ldc));
  mix(static_cast<uint32_t>(key.input_type));
  mix(static_cast<uint32_t>(key.compute_type));
  mix(static_cast<uint32_t>(key.epilogue));
  mix(key.epilogue_align);
  for (uint32_t a : key.align) mix(a);
  mix(key.workspace_bytes);
  return seed;
}

GemmPlanCache::GemmPlanCache(std::size_t capacity) : capacity_(capacity) {
  DPT_CHECK(capacity > 0) << "GemmPlanCache: capacity must be > 0";
}

GemmPlanCache::Lookup GemmPlanCache::find(const GemmPlanKey& key) {
  const auto it = index_.find(key);
  if (it == index_.end()) {
    ++misses_;
    return {};
  }
  ++hits_;
  entries_.splice(entries_.begin(), entries_, it->second);
  return {true, it->second->plan.get()};
}

GemmPlan* GemmPlanCache::insert(const GemmPlanKey& key, std::unique_ptr<GemmPlan> plan) {
  const auto it = index_.find(key);
  if (it != index_.end()) {
    entries_.erase(it->second);
    index_.erase(it);
  }
  entries_.push_front(Entry{key, std::move(plan)});
  index_[key] = entries_.begin();
  while (entries_.size() > capacity_) {
    index_.erase(entries_.back().key);
    entries_.pop_back();
    ++evictions_;
  }
  return entries_.front().plan.get();
}

void GemmPlanCache::clear() {
  index_.clear();
  entries_.clear();
}

}  // namespace dpt
