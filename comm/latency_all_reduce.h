// The small-message all-reduce: recursive doubling. In round k rank r swaps its whole buffer with
// rank r ^ 2^k and reduces, so after log2(n) rounds every rank holds the result: one latency per
// round instead of the ring's 2(n-1). With n not a power of two, rank p + i (p the largest power
// of two <= n) first hands its buffer to rank i and gets the result back at the end. Every
// message is preceded by the collective's header, posted back to back with the data, and the
// data is received only after the header matched: ranks that disagree are refused by name at no
// extra round trip. Reduction is commutative here (IEEE sums, NaN-propagating max/min), so every
// rank ends with the same bits.
#pragma once

#include <cstddef>
#include <vector>

#include "comm/collective_check.h"
#include "comm/transport.h"

namespace dpt {

// recv = op over ranks of send (count elements; send == recv allowed); kAvg gives the average.
// Works on a copy: recv is written only once the result is complete, so a failure leaves it as
// it was. Throws CommTimeout at `deadline` and dpt::Error(kComm) on a header mismatch. Headers
// travel on kCollectiveCheckTag, like check_collective's, so a rank in another collective sees
// them and names the difference; data on `data_tag`. `scratch` is working space kept between calls
// (grown to twice the message, never shrunk).
void recursive_doubling_all_reduce(Transport& transport, const void* send, void* recv,
                                   std::size_t count, DType dtype, ReduceOp op,
                                   const CollectiveHeader& header, Clock::time_point deadline,
                                   int data_tag, std::vector<char>& scratch);

}  // namespace dpt
