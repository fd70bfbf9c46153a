// GemmPlanCache: every key field tells plans apart, hits refresh recency, the least recently
// used key goes first past the capacity (its plan destroyed), and "no plan" is remembered.
#include "devices/gemm_plan_cache.h"

#include <gtest/gtest.h>

#include <functional>
#include <vector>

#include "devices/error.h"

namespace dpt {
namespace {

// Counts its destructions, so tests see when the cache frees a plan.
class CountedPlan : public GemmPlan {
 public:
  explicit CountedPlan(int* destroyed) : destroyed_(destroyed) {}
  ~CountedPlan() override { ++*destroyed_; }

 private:
  int* destroyed_;
};

GemmPlanKey key_of(int64_t m) {
  GemmPlanKey key;
  key.m = m, key.n = 8, key.k = 4, key.lda = 4, key.ldb = 8, key.ldc = 8;
  key.align[0] = key.align[1] = key.align[2] = key.align[3] = 256;
  key.workspace_bytes = 1 << 20;
  return key;
}

TEST(GemmPlanCacheTest, EveryFieldChangesTheKey) {
  const GemmPlanKey base = key_of(16);
  const std::vector<std::function<void(GemmPlanKey&)>> changes = {
      [](GemmPlanKey& k) { k.m += 1; },
      [](GemmPlanKey& k) { k.n += 1; },
      [](GemmPlanKey& k) { k.k += 1; },
      [](GemmPlanKey& k) { k.trans_a = true; },
      [](GemmPlanKey& k) { k.trans_b = true; },
      [](GemmPlanKey& k) { k.lda += 1; },
      [](GemmPlanKey& k) { k.ldb += 1; },
      [](GemmPlanKey& k) { k.ldc += 1; },
      [](GemmPlanKey& k) { k.input_type = 14; },
      [](GemmPlanKey& k) { k.compute_type = 77; },
      [](GemmPlanKey& k) { k.epilogue = 4; },
      [](GemmPlanKey& k) { k.align[0] = 4; },
      [](GemmPlanKey& k) { k.align[1] = 4; },
      [](GemmPlanKey& k) { k.align[2] = 4; },
      [](GemmPlanKey& k) { k.align[3] = 4; },
      [](GemmPlanKey& k) { k.workspace_bytes = 0; },
      [](GemmPlanKey& k) { k.epilogue_align = 16; },
  };
  int destroyed = 0;
  GemmPlanCache cache(64);
  GemmPlan* const base_plan = cache.insert(base, std::make_unique<CountedPlan>(&destroyed));
  for (std::size_t i = 0; i < changes.size(); ++i) {
    GemmPlanKey changed = base;
    changes[i](changed);
    EXPECT_FALSE(changed == base) << "change " << i;
    EXPECT_FALSE(cache.find(changed).found) << "change " << i;
    cache.insert(changed, std::make_unique<CountedPlan>(&destroyed));
  }
  EXPECT_EQ(cache.size(), changes.size() + 1);
  EXPECT_EQ(cache.find(base).plan, base_plan);
  EXPECT_EQ(GemmPlanKeyHash{}(base), GemmPlanKeyHash{}(key_of(16)));
  EXPECT_EQ(destroyed, 0);
}

TEST(GemmPlanCacheTest, HitsReturnTheStoredPlanAndCount) {
  int destroyed = 0;
  GemmPlanCache cache(4);
  EXPECT_FALSE(cache.find(key_of(1)).found);
  GemmPlan* plan = cache.insert(key_of(1), std::make_unique<CountedPlan>(&destroyed));
  for (int i = 0; i < 3; ++i) {
    const GemmPlanCache::Lookup lookup = cache.find(key_of(1));
    EXPECT_TRUE(lookup.found);
    EXPECT_EQ(lookup.plan, plan);
  }
  EXPECT_EQ(cache.hits(), 3);
  EXPECT_EQ(cache.misses(), 1);
}

TEST(GemmPlanCacheTest, EvictsTheLeastRecentlyUsed) {
  int destroyed = 0;
  GemmPlanCache cache(3);
  for (int64_t m = 1; m <= 3; ++m) {
    cache.insert(key_of(m), std::make_unique<CountedPlan>(&destroyed));
  }
  ASSERT_TRUE(cache.find(key_of(1)).found);  // 2 is now the least recently used
  cache.insert(key_of(4), std::make_unique<CountedPlan>(&destroyed));
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.evictions(), 1);
  EXPECT_EQ(destroyed, 1);
  EXPECT_FALSE(cache.find(key_of(2)).found);
  EXPECT_TRUE(cache.find(key_of(1)).found);
  EXPECT_TRUE(cache.find(key_of(3)).found);
  EXPECT_TRUE(cache.find(key_of(4)).found);
  // Many odd shapes (an epoch's last micro-batches) never grow it past the capacity.
  for (int64_t m = 100; m < 200; ++m) {
    cache.insert(key_of(m), std::make_unique<CountedPlan>(&destroyed));
  }
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(destroyed, 101);
  cache.clear();
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(destroyed, 104);
}

TEST(GemmPlanCacheTest, RemembersThatAKeyHasNoPlan) {
  int destroyed = 0;
  GemmPlanCache cache(2);
  EXPECT_EQ(cache.insert(key_of(7), nullptr), nullptr);
  const GemmPlanCache::Lookup lookup = cache.find(key_of(7));
  EXPECT_TRUE(lookup.found);
  EXPECT_EQ(lookup.plan, nullptr);
  // Inserting the same key again replaces the entry (one entry, the old plan freed).
  cache.insert(key_of(8), std::make_unique<CountedPlan>(&destroyed));
  cache.insert(key_of(8), std::make_unique<CountedPlan>(&destroyed));
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(destroyed, 1);
}

TEST(GemmPlanCacheTest, RejectsZeroCapacity) { EXPECT_THROW(GemmPlanCache(0), Error); }

}  // namespace
}  // namespace dpt
