// Throughput-balanced shares of the global batch (comm.balance, README "Heterogeneous workers").
// With BALANCE_THROUGHPUT every rank measures its compute time per sample (data, forward and
// backward; not the wait for its peers) over a few steps after a warm-up; the ranks all-gather
// the sums and every rank computes the same integer shares from them, proportional to samples/s.
// The trainer and `dpt bench step` ask it which rows each rank computes; the update does not
// depend on the split, because every rank scales its loss gradient by 1 / global batch.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "core/config.pb.h"
#include "launch/train_step.h"

namespace dpt {

// Rows per rank for `total` rows in proportion to `weights` (one per rank): largest remainder
// (Hamilton) on total * w / sum(w), ties to the lower rank; then, when total >= the number of
// ranks, every rank with no row takes one from the rank with the most (ties: the lower rank).
// The result sums to `total`. Throws kInternal naming the rank when a weight is not finite and
// > 0, and when there are no ranks or total < 0.
std::vector<int64_t> apportion(int64_t total, const std::vector<double>& weights);

// The equal split as counts: rank r of w gets floor((r+1)b/w) - floor(rb/w) rows (shard_of).
std::vector<int64_t> equal_shares(int64_t batch, int world);

// Rows [begin, end) of `rank` when a batch is split into consecutive `counts` by rank.
Shard shard_in(const std::vector<int64_t>& counts, int rank);

// What a worker's speed is measured by: the phases whose time grows with its rows, as its device
// spent them (on a GPU the compute stream's time, not the host's time to queue the kernels).
inline double per_sample_seconds(const StepTimes& times) {
  return times.data_s + times.forward_s + times.backward_s;
}

// One decision, identical on every rank.
struct BalanceDecision {
  int64_t first_step = 0, last_step = 0;  // measured steps (first_step, last_step]
  std::vector<double> samples_per_s;      // per rank: rows / per_sample_seconds, summed
  std::vector<int64_t> previous;          // rows of a full batch per rank until now
  std::vector<int64_t> shares;            // rows of a full batch per rank from now on
};

// "balance: steps 3-7 measured 5230, 1710 samples/s per rank; shares 45, 15 of 60 rows (were
// 30, 30)".
std::string describe(const BalanceDecision& decision);

class Balancer {
 public:
  // `world` ranks, global batch `batch`, this run starting at step `first_step` (> 0 after a
  // resume). `restored`: the shares a checkpoint saved (empty: none); used when they fit this
  // world and batch, else the shares are measured again (notes() says which).
  Balancer(const proto::CommConfig& config, int world, int64_t batch, int64_t first_step,
           const std::vector<int64_t>& restored);

  // Rows [begin, end) that `rank` computes of a batch of `rows` rows: the shares for the full
  // batch, a split in their proportions for a smaller (last) batch. No allocation for the full
  // batch.
  Shard shard(int64_t rows, int rank) const;
  // Rows of a full batch per rank (the equal split until measured).
  const std::vector<int64_t>& shares() const { return shares_; }
  // The shares were measured or restored (not the equal split): what a checkpoint saves.
  bool balanced() const { return balanced_; }
  // Lines for the user about restored shares; empty otherwise.
  const std::vector<std::string>& notes() const { return notes_; }

  // After every step on every rank: `step` steps are now done; this rank spent `seconds`
  // (per_sample_seconds) on `rows` rows. On the steps where a decision is due (the same on every
  // rank, as they depend only on `step`) this is a collective and returns the decision.
  std::optional<BalanceDecision> record(Communicator& comm, int64_t step, double seconds,
                                        int64_t rows);

 private:
  bool enabled_;
  int world_;
  int64_t batch_;
  int64_t rebalance_every_;
  std::vector<int64_t> shares_;
  std::vector<int64_t> offsets_;  // prefix sums of shares_, world_ + 1 entries
  bool balanced_ = false;
  std::vector<std::string> notes_;
  int64_t measure_after_ = 0;  // steps > measure_after_ are measured
  int64_t decide_at_ = -1;     // the step whose record() decides; -1: none
  double seconds_ = 0;
  double rows_ = 0;

  void set_shares(std::vector<int64_t> shares);
};

}  // namespace dpt
