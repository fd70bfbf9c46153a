// Recursive doubling with piggybacked headers (comm/latency_all_reduce.h).
#include "comm/latency_all_reduce.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "comm/reduce.h"
#include "comm/ring.h"

namespace dpt {
namespace {

// Data travels in pieces small enough for MPI's eager protocol (Open MPI's shared-memory limit is
// 4 KiB with its header), so no piece waits for a rendezvous round trip.
constexpr std::size_t kPieceBytes = 2048;

void wait_for(Transport& transport, Request& request, int peer, Clock::time_point deadline) {
  if (!transport.wait(request, deadline)) {
    throw CommTimeout(peer, "all-reduce: timed out waiting for rank " + std::to_string(peer));
  }
}

// One step: send header + `bytes` of `out` to `to` (unless -1), receive header + data from `from`
// (unless -1) into `in`. Both receives are posted first, so nothing waits for a round trip; the
// header is checked before the data is looked at (`in` is scratch: a peer that disagrees may have
// filled it, never overflowed it).
void exchange(Transport& transport, const CollectiveHeader& header, const char* out,
              std::size_t bytes, int to, int from, char* in, Clock::time_point deadline,
              int data_tag) {
  const HeaderWords mine = encode_header(header);
  HeaderWords theirs{};
  const std::size_t pieces = std::max<std::size_t>(1, (bytes + kPieceBytes - 1) / kPieceBytes);
  auto piece = [&](std::size_t i) { return std::min(kPieceBytes, bytes - i * kPieceBytes); };
  std::unique_ptr<Request> header_in, header_out;
  std::vector<std::unique_ptr<Request>> data_in, data_out;
  if (from >= 0) {
    header_in = transport.irecv(theirs.data(), sizeof(theirs), from, kCollectiveCheckTag);
    for (std::size_t i = 0; i < pieces; ++i) {
      data_in.push_back(transport.irecv(in + i * kPieceBytes, piece(i), from, data_tag));
    }
  }
  if (to >= 0) {
    header_out = transport.isend(mine.data(), sizeof(mine), to, kCollectiveCheckTag);
    for (std::size_t i = 0; i < pieces; ++i) {
      data_out.push_back(transport.isend(out + i * kPieceBytes, piece(i), to, data_tag));
    }
  }
  if (from >= 0) {
    wait_for(transport, *header_in, from, deadline);
    check_header(header, transport.rank(), theirs, from);
    for (auto& request : data_in) wait_for(transport, *request, from, deadline);
  }
  if (to >= 0) {
    wait_for(transport, *header_out, to, deadline);
    for (auto& request : data_out) wait_for(transport, *request, to, deadline);
  }
}

}  // namespace

void recursive_doubling_all_reduce(Transport& transport, const void* send, void* recv,
                                   std::size_t count, DType dtype, ReduceOp op,
                                   const CollectiveHeader& header, Clock::time_point deadline,
                                   int data_tag) {
  const int n = transport.size(), rank = transport.rank();
  int p = 1;
  while (p * 2 <= n) p *= 2;
  const int extra = n - p;
  const std::size_t size = count * dtype_size(dtype);
  const char* input = static_cast<const char*>(send);
  // count 0 still exchanges headers, so a count mismatch is named.
  std::vector<char> work(input, input + size), incoming(size);
  if (rank >= p) {  // hand over, then receive the result
    exchange(transport, header, work.data(), size, rank - p, -1, nullptr, deadline, data_tag);
    exchange(transport, header, nullptr, size, -1, rank - p, work.data(), deadline, data_tag);
  } else {
    if (rank < extra) {
      exchange(transport, header, nullptr, size, -1, rank + p, incoming.data(), deadline, data_tag);
      reduce_into(work.data(), incoming.data(), count, dtype, op);
    }
    for (int distance = 1; distance < p; distance *= 2) {
      const int partner = rank ^ distance;
      exchange(transport, header, work.data(), size, partner, partner, incoming.data(), deadline,
               data_tag);
      reduce_into(work.data(), incoming.data(), count, dtype, op);
    }
    if (op == ReduceOp::kAvg) finish_average(work.data(), count, dtype, n);
    if (rank < extra) {
      exchange(transport, header, work.data(), size, rank + p, -1, nullptr, deadline, data_tag);
    }
  }
  if (size > 0) std::memcpy(recv, work.data(), size);
}

}  // namespace dpt
