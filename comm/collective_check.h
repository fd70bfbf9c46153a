// Agreement checks around each collective, shared by every Transport-based backend. Before moving
// data, ranks compare what they were asked to do (kind, count, dtype, op, root, sequence number):
// mismatched counts corrupted the heap under Open MPI (../shared/RELIABILITY.md), so a mismatch
// is refused by name instead. After a timeout, ranks ask each other how far they got, so the
// error can name the ranks that never arrived.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "comm/ring.h"
#include "comm/transport.h"
#include "devices/error.h"

namespace dpt {

enum class CollectiveKind { kAllReduce, kBroadcast, kAllGather, kReduceScatter, kBarrier };

// "all_reduce", "broadcast", "all_gather", "reduce_scatter", "barrier".
const char* collective_kind_name(CollectiveKind kind);

// What one rank was asked to do. Fields a kind does not use (op for broadcast, root for
// all_reduce, everything but the sequence for barrier) are ignored when comparing.
struct CollectiveHeader {
  uint64_t sequence = 0;  // the n-th collective on this communicator, counted from 1
  CollectiveKind kind = CollectiveKind::kBarrier;
  uint64_t count = 0;
  DType dtype = DType::kF32;
  ReduceOp op = ReduceOp::kSum;
  int root = 0;
};

// A header without its sequence number (the communicator numbers it).
CollectiveHeader make_header(CollectiveKind kind, uint64_t count, DType dtype,
                             ReduceOp op = ReduceOp::kSum);

// "all_reduce #12" — how errors name a collective.
std::string collective_label(const CollectiveHeader& header);
// "all_reduce(count=1000, float32, sum)", "broadcast(count=3, int64, root=1)", "barrier()".
std::string describe_call(const CollectiveHeader& header);

// A header as it travels: six uint64 words; fields the kind does not use are zero.
using HeaderWords = std::array<uint64_t, 6>;
HeaderWords encode_header(const CollectiveHeader& header);

// The header at the start of a message of `bytes` received from rank `peer` on
// kCollectiveCheckTag; throws dpt::Error(kComm) when the message is too short to hold one.
HeaderWords read_header(const char* message, std::size_t bytes, int peer);

// Throws dpt::Error(kComm) naming both calls when `theirs`, received from rank `peer`, differs
// from this rank's `header` (see check_collective for the message).
void check_header(const CollectiveHeader& header, int rank, const HeaderWords& theirs, int peer);

// Suggested tags for the messages of the checks, apart from the ring's [tag, tag + 4). A backend
// may use others, as long as no two kinds of message share one.
constexpr int kCollectiveCheckTag = 1;
constexpr int kFindMissingTag = 2;
constexpr int kLatencyDataTag = 4;  // recursive doubling's data (its headers use tag 1)
constexpr int kRingTagBase = 8;
// The largest message on kCollectiveCheckTag: a header, or a header followed by the first data of
// a small all-reduce (comm/latency_all_reduce.h), kept under Open MPI's 4 KiB shared-memory eager
// limit. Header receives take up to this much, so either kind of message is read and compared.
constexpr std::size_t kHeaderMessageBytes = 4000;

// Sends this rank's header to rank+1 and compares it with the one from rank-1; around the ring
// that makes all headers equal. On a mismatch throws dpt::Error(kComm), e.g. "all_reduce #12:
// rank 1 called all_reduce(count=999, float32, sum) but rank 0 called all_reduce(count=1000,
// float32, sum)". Only ranks next to a difference see it; the others go on into the collective
// and fail when the detecting ranks abort (or time out). Throws CommTimeout at `deadline`.
// World of one: returns at once.
void check_collective(Transport& transport, const CollectiveHeader& header,
                      Clock::time_point deadline, int tag = kCollectiveCheckTag);

// Called by a rank whose collective `sequence` timed out: sends `sequence` to every other rank
// and collects theirs until `grace_deadline`. Returns, in increasing order, the ranks that did
// not answer or answered with a smaller sequence (they never reached this collective). Best
// effort: a rank answers only when its own collective times out too (or already has), so a rank
// that arrived much later than the grace period may be reported as missing, and stale answers
// from an earlier failure are not told apart.
std::vector<int> find_missing_ranks(Transport& transport, uint64_t sequence,
                                    Clock::time_point grace_deadline, int tag = kFindMissingTag);

// The error a backend throws when a collective's wait expired: asks the others where they are
// (find_missing_ranks with a grace of min(1 s, timeout_s / 4)) and returns kComm "all_reduce #7
// timed out after 0.5 s; ranks that did not arrive: 2" (or, when all arrived, "... timed out
// after 0.5 s waiting for rank 2; every rank reached it").
Error collective_timeout_error(Transport& transport, const CollectiveHeader& header,
                               double timeout_s, const CommTimeout& timeout,
                               int tag = kFindMissingTag);

// now + seconds, saturating instead of overflowing for huge timeouts.
Clock::time_point deadline_after(double seconds);

}  // namespace dpt
