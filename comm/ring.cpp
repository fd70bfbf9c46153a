// Ring, chain and dissemination collectives over a Transport (comm/ring.h).
// A ring of n ranks: rank r sends to r+1 and receives from r-1 (mod n). The buffer is cut into n
// blocks; in reduce-scatter step s rank r sends block r-s-1 and reduces the incoming block r-s-2
// into its own copy, so after n-1 steps block r has visited every rank exactly once and ends on
// rank r fully reduced. All-gather then passes each finished block around unchanged. Every block is
// therefore reduced in one fixed order, on one rank, and every rank ends with the same bits.
#include <algorithm>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "comm/reduce.h"
#include "comm/ring.h"

namespace dpt {
namespace {

// Tag offsets inside [options.tag, options.tag + 4): phases that may overlap in time between
// ranks never share a tag, so a fast rank's next phase cannot be matched by a slow rank.
constexpr int kReduceScatterTag = 0;
constexpr int kAllGatherTag = 1;
constexpr int kBroadcastTag = 2;
constexpr int kBarrierTag = 3;

// Sends still in flight before the oldest is waited for; bounds requests when chunks are small.
constexpr std::size_t kMaxSendsInFlight = 8;

// Splits `total` elements into n blocks whose sizes differ by at most one (the first total % n
// blocks get one more), so any count works, including count < n and 0.
struct Blocks {
  std::size_t total;
  int n;
  std::size_t offset(int b) const {
    const std::size_t base = total / n, extra = total % n, index = static_cast<std::size_t>(b);
    return index * base + std::min(index, extra);
  }
  std::size_t size(int b) const { return offset(b + 1) - offset(b); }
};

int mod(int a, int n) { return ((a % n) + n) % n; }

void wait_or_throw(Transport& transport, Request& request, int peer, Clock::time_point deadline,
                   const char* what) {
  if (!transport.wait(request, deadline)) {
    throw CommTimeout(peer,
                      std::string(what) + ": timed out waiting for rank " + std::to_string(peer));
  }
}

// Sends, each waited for before the function returns; at most kMaxSendsInFlight outstanding.
class SendQueue {
 public:
  SendQueue(Transport& transport, int peer, Clock::time_point deadline, const char* what)
      : transport_(transport), peer_(peer), deadline_(deadline), what_(what) {}
  void post(const char* data, std::size_t bytes, int tag) {
    if (pending_.size() >= kMaxSendsInFlight) pop_oldest();
    pending_.push_back(transport_.isend(data, bytes, peer_, tag));
  }
  void drain() {
    while (!pending_.empty()) pop_oldest();
  }

 private:
  void pop_oldest() {
    wait_or_throw(transport_, *pending_.front(), peer_, deadline_, what_);
    pending_.pop_front();
  }
  Transport& transport_;
  int peer_;
  Clock::time_point deadline_;
  const char* what_;
  std::deque<std::unique_ptr<Request>> pending_;
};

// Where one step's incoming bytes go: straight into place, or (reduce == true) through a double
// buffered scratch area and then reduce_into() the destination.
struct Incoming {
  char* data;
  std::size_t bytes;
  bool reduce;
};

// One ring step: sends `send_bytes` at `send` to the right neighbour and receives the incoming
// block from the left, both in chunks. The receive of chunk c+1 is posted before chunk c is
// reduced, so the transfer of the next chunk overlaps the arithmetic on this one.
void ring_step(Transport& transport, const char* send, std::size_t send_bytes, Incoming in,
               DType dtype, ReduceOp op, int tag, Clock::time_point deadline,
               std::size_t chunk_bytes, std::vector<char>& scratch, const char* what) {
  const int n = transport.size(), rank = transport.rank();
  const int right = mod(rank + 1, n), left = mod(rank - 1, n);
  const std::size_t element = dtype_size(dtype);
  const std::size_t send_chunks = (send_bytes + chunk_bytes - 1) / chunk_bytes;
  const std::size_t recv_chunks = (in.bytes + chunk_bytes - 1) / chunk_bytes;
  if (in.reduce && scratch.size() < 2 * std::min(chunk_bytes, in.bytes)) {
    scratch.resize(2 * std::min(chunk_bytes, in.bytes));
  }
  const std::size_t slot_bytes = scratch.size() / 2;

  auto chunk_length = [chunk_bytes](std::size_t total, std::size_t c) {
    return std::min(chunk_bytes, total - c * chunk_bytes);
  };
  std::unique_ptr<Request> receives[2];
  auto post_receive = [&](std::size_t c) {
    char* target = in.reduce ? scratch.data() + (c % 2) * slot_bytes : in.data + c * chunk_bytes;
    receives[c % 2] = transport.irecv(target, chunk_length(in.bytes, c), left, tag);
  };

  SendQueue sends(transport, right, deadline, what);
  if (recv_chunks > 0) post_receive(0);
  for (std::size_t c = 0; c < std::max(send_chunks, recv_chunks); ++c) {
    if (c < send_chunks) sends.post(send + c * chunk_bytes, chunk_length(send_bytes, c), tag);
    if (c + 1 < recv_chunks) post_receive(c + 1);
    if (c < recv_chunks) {
      wait_or_throw(transport, *receives[c % 2], left, deadline, what);
      receives[c % 2].reset();
      if (in.reduce) {
        const std::size_t length = chunk_length(in.bytes, c);
        reduce_into(in.data + c * chunk_bytes, scratch.data() + (c % 2) * slot_bytes,
                    length / element, dtype, op);
      }
    }
  }
  sends.drain();
}

// Chunk size in bytes: a whole number of elements, at least one.
std::size_t chunk_size(const RingOptions& options, DType dtype) {
  const std::size_t element = dtype_size(dtype);
  return std::max<std::size_t>(1, options.chunk_bytes / element) * element;
}

// Reduce-scatter over `blocks`: afterwards block r of `data` on rank r is op over all ranks
// (kAvg: the average). Other blocks are left partially reduced.
void reduce_scatter_blocks(Transport& transport, char* data, const Blocks& blocks, DType dtype,
                           ReduceOp op, Clock::time_point deadline, const RingOptions& options) {
  const int n = transport.size(), rank = transport.rank();
  const std::size_t element = dtype_size(dtype), chunk = chunk_size(options, dtype);
  std::vector<char> local;
  std::vector<char>& scratch = options.scratch != nullptr ? *options.scratch : local;
  for (int step = 0; step + 1 < n; ++step) {
    const int send_block = mod(rank - step - 1, n), recv_block = mod(rank - step - 2, n);
    Incoming in{data + blocks.offset(recv_block) * element, blocks.size(recv_block) * element,
                true};
    ring_step(transport, data + blocks.offset(send_block) * element,
              blocks.size(send_block) * element, in, dtype, op, options.tag + kReduceScatterTag,
              deadline, chunk, scratch, "ring reduce-scatter");
  }
  if (op == ReduceOp::kAvg) {
    finish_average(data + blocks.offset(rank) * element, blocks.size(rank), dtype, n);
  }
}

// All-gather over `blocks`: block r of rank r is copied to every rank.
void all_gather_blocks(Transport& transport, char* data, const Blocks& blocks, DType dtype,
                       Clock::time_point deadline, const RingOptions& options) {
  const int n = transport.size(), rank = transport.rank();
  const std::size_t element = dtype_size(dtype), chunk = chunk_size(options, dtype);
  std::vector<char> unused;
  for (int step = 0; step + 1 < n; ++step) {
    const int send_block = mod(rank - step, n), recv_block = mod(rank - step - 1, n);
    Incoming in{data + blocks.offset(recv_block) * element, blocks.size(recv_block) * element,
                false};
    ring_step(transport, data + blocks.offset(send_block) * element,
              blocks.size(send_block) * element, in, dtype, ReduceOp::kSum,
              options.tag + kAllGatherTag, deadline, chunk, unused, "ring all-gather");
  }
}

}  // namespace

void ring_all_reduce(Transport& transport, void* data, std::size_t count, DType dtype, ReduceOp op,
                     Clock::time_point deadline, const RingOptions& options) {
  const int n = transport.size();
  if (count == 0) return;
  if (n == 1) {
    // A world of one: the sum is the data; the average divides by one.
    return;
  }
  const Blocks blocks{count, n};
  char* bytes = static_cast<char*>(data);
  reduce_scatter_blocks(transport, bytes, blocks, dtype, op, deadline, options);
  all_gather_blocks(transport, bytes, blocks, dtype, deadline, options);
}

void ring_reduce_scatter(Transport& transport, void* data, std::size_t count, DType dtype,
                         ReduceOp op, Clock::time_point deadline, const RingOptions& options) {
  const int n = transport.size();
  if (count == 0 || n == 1) return;
  reduce_scatter_blocks(transport, static_cast<char*>(data), Blocks{count * n, n}, dtype, op,
                        deadline, options);
}

void ring_all_gather(Transport& transport, void* data, std::size_t count, DType dtype,
                     Clock::time_point deadline, const RingOptions& options) {
  const int n = transport.size();
  if (count == 0 || n == 1) return;
  all_gather_blocks(transport, static_cast<char*>(data), Blocks{count * n, n}, dtype, deadline,
                    options);
}

void chain_broadcast(Transport& transport, void* data, std::size_t count, DType dtype, int root,
                     Clock::time_point deadline, const RingOptions& options) {
  const int n = transport.size(), rank = transport.rank();
  if (count == 0 || n == 1) return;
  // Position along the chain root -> root+1 -> ... -> root-1; each rank forwards chunk c as soon
  // as it has it, so all links carry data at once after the first n-1 chunks.
  const int position = mod(rank - root, n);
  const int previous = mod(rank - 1, n), next = mod(rank + 1, n);
  const bool receives = position > 0, forwards = position + 1 < n;
  const std::size_t chunk = chunk_size(options, dtype), total = count * dtype_size(dtype);
  const std::size_t chunks = (total + chunk - 1) / chunk;
  const int tag = options.tag + kBroadcastTag;
  char* bytes = static_cast<char*>(data);
  auto length = [&](std::size_t c) { return std::min(chunk, total - c * chunk); };

  std::unique_ptr<Request> pending[2];
  if (receives) pending[0] = transport.irecv(bytes, length(0), previous, tag);
  SendQueue sends(transport, next, deadline, "chain broadcast");
  for (std::size_t c = 0; c < chunks; ++c) {
    if (receives) {
      if (c + 1 < chunks) {
        pending[(c + 1) % 2] =
            transport.irecv(bytes + (c + 1) * chunk, length(c + 1), previous, tag);
      }
      wait_or_throw(transport, *pending[c % 2], previous, deadline, "chain broadcast");
      pending[c % 2].reset();
    }
    if (forwards) sends.post(bytes + c * chunk, length(c), tag);
  }
  sends.drain();
}

void dissemination_barrier(Transport& transport, Clock::time_point deadline,
                           const RingOptions& options) {
  const int n = transport.size(), rank = transport.rank();
  const int tag = options.tag + kBarrierTag;
  // Round k: tell rank+2^k we are here, hear from rank-2^k. After ceil(log2 n) rounds every rank
  // has (transitively) heard from every other.
  for (int distance = 1; distance < n; distance *= 2) {
    const char token = 1;
    char received = 0;
    const int to = mod(rank + distance, n), from = mod(rank - distance, n);
    std::unique_ptr<Request> receive = transport.irecv(&received, 1, from, tag);
    std::unique_ptr<Request> send = transport.isend(&token, 1, to, tag);
    wait_or_throw(transport, *receive, from, deadline, "dissemination barrier");
    wait_or_throw(transport, *send, to, deadline, "dissemination barrier");
  }
}

}  // namespace dpt
