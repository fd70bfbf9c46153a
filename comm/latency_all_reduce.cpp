// Recursive doubling with piggybacked headers (comm/latency_all_reduce.h).
#include "comm/latency_all_reduce.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "comm/reduce.h"
#include "comm/ring.h"

namespace dpt {
namespace {

// The header and the first kFirstBytes of data travel as one message on kCollectiveCheckTag (one
// message per round up to ~4 KiB); the rest in pieces small enough for MPI's eager protocol
// (Open MPI's shared-memory limit is 4 KiB with its own header), so nothing waits for a
// rendezvous round trip.
constexpr std::size_t kFirstBytes = kHeaderMessageBytes - sizeof(HeaderWords);
constexpr std::size_t kPieceBytes = kHeaderMessageBytes;

void wait_for(Transport& transport, Request& request, int peer, Clock::time_point deadline) {
  if (!transport.wait(request, deadline)) {
    throw CommTimeout(peer, "all-reduce: timed out waiting for rank " + std::to_string(peer));
  }
}

// One step: send header + `bytes` of `out` to `to` (unless -1), receive header + data from `from`
// (unless -1) into `in`. Every receive is posted first, so nothing waits for a round trip; the
// header is checked before the data is looked at. The first message is received into a buffer
// that holds the largest first message of any size, so a peer that disagrees about the count is
// still read and named; later pieces land in `in`, which a disagreeing peer may have filled but
// never overflowed.
void exchange(Transport& transport, const CollectiveHeader& header, const char* out,
              std::size_t bytes, int to, int from, char* in, Clock::time_point deadline,
              int data_tag) {
  const HeaderWords mine = encode_header(header);
  const std::size_t first = std::min(bytes, kFirstBytes);
  const std::size_t rest = bytes - first;
  const std::size_t pieces = (rest + kPieceBytes - 1) / kPieceBytes;
  auto piece = [&](std::size_t i) { return std::min(kPieceBytes, rest - i * kPieceBytes); };
  std::array<char, kHeaderMessageBytes> first_in, first_out;
  std::unique_ptr<Request> head_in, head_out;
  std::vector<std::unique_ptr<Request>> data_in, data_out;
  if (from >= 0) {
    head_in = transport.irecv_up_to(first_in.data(), first_in.size(), from, kCollectiveCheckTag);
    for (std::size_t i = 0; i < pieces; ++i) {
      data_in.push_back(transport.irecv(in + first + i * kPieceBytes, piece(i), from, data_tag));
    }
  }
  if (to >= 0) {
    std::memcpy(first_out.data(), mine.data(), sizeof(mine));
    if (first > 0) std::memcpy(first_out.data() + sizeof(mine), out, first);
    head_out = transport.isend(first_out.data(), sizeof(mine) + first, to, kCollectiveCheckTag);
    for (std::size_t i = 0; i < pieces; ++i) {
      data_out.push_back(transport.isend(out + first + i * kPieceBytes, piece(i), to, data_tag));
    }
  }
  if (from >= 0) {
    wait_for(transport, *head_in, from, deadline);
    check_header(header, transport.rank(), read_header(first_in.data(), head_in->received(), from),
                 from);
    // Same header, same count: the first message has this rank's length.
    if (first > 0) std::memcpy(in, first_in.data() + sizeof(mine), first);
    for (auto& request : data_in) wait_for(transport, *request, from, deadline);
  }
  if (to >= 0) {
    wait_for(transport, *head_out, to, deadline);
    for (auto& request : data_out) wait_for(transport, *request, to, deadline);
  }
}

}  // namespace

void recursive_doubling_all_reduce(Transport& transport, const void* send, void* recv,
                                   std::size_t count, DType dtype, ReduceOp op,
                                   const CollectiveHeader& header, Clock::time_point deadline,
                                   int data_tag, std::vector<char>& scratch) {
  const int n = transport.size(), rank = transport.rank();
  int p = 1;
  while (p * 2 <= n) p *= 2;
  const int extra = n - p;
  const std::size_t size = count * dtype_size(dtype);
  const char* input = static_cast<const char*>(send);
  // count 0 still exchanges headers, so a count mismatch is named.
  if (scratch.size() < 2 * size) scratch.resize(2 * size);
  char* const work = scratch.data();
  char* const incoming = work + size;
  if (size > 0) std::memcpy(work, input, size);
  if (rank >= p) {  // hand over, then receive the result
    exchange(transport, header, work, size, rank - p, -1, nullptr, deadline, data_tag);
    exchange(transport, header, nullptr, size, -1, rank - p, work, deadline, data_tag);
  } else {
    if (rank < extra) {
      exchange(transport, header, nullptr, size, -1, rank + p, incoming, deadline, data_tag);
      reduce_into(work, incoming, count, dtype, op);
    }
    for (int distance = 1; distance < p; distance *= 2) {
      const int partner = rank ^ distance;
      exchange(transport, header, work, size, partner, partner, incoming, deadline, data_tag);
      reduce_into(work, incoming, count, dtype, op);
    }
    if (op == ReduceOp::kAvg) finish_average(work, count, dtype, n);
    if (rank < extra) {
      exchange(transport, header, work, size, rank + p, -1, nullptr, deadline, data_tag);
    }
  }
  if (size > 0) std::memcpy(recv, work, size);
}

}  // namespace dpt
