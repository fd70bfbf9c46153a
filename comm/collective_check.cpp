// Header comparison before each collective and the missing-rank poll after a timeout
// (comm/collective_check.h). Headers travel as six uint64 words; fields a kind does not use are
// zeroed first so that, say, two broadcasts never differ by an op nobody looks at.
#include "comm/collective_check.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <sstream>

namespace dpt {
namespace {

using Words = HeaderWords;

}  // namespace

HeaderWords encode_header(const CollectiveHeader& header) {
  const bool uses_data = header.kind != CollectiveKind::kBarrier;
  const bool uses_op =
      header.kind == CollectiveKind::kAllReduce || header.kind == CollectiveKind::kReduceScatter;
  const bool uses_root = header.kind == CollectiveKind::kBroadcast;
  return Words{header.sequence,
               static_cast<uint64_t>(header.kind),
               uses_data ? header.count : 0,
               uses_data ? static_cast<uint64_t>(header.dtype) : 0,
               uses_op ? static_cast<uint64_t>(header.op) : 0,
               uses_root ? static_cast<uint64_t>(static_cast<int64_t>(header.root)) : 0};
}

namespace {

CollectiveHeader decode(const Words& words) {
  CollectiveHeader header;
  header.sequence = words[0];
  header.kind = static_cast<CollectiveKind>(static_cast<int>(words[1]));
  header.count = words[2];
  header.dtype = static_cast<DType>(static_cast<int>(words[3]));
  header.op = static_cast<ReduceOp>(static_cast<int>(words[4]));
  header.root = static_cast<int>(static_cast<int64_t>(words[5]));
  return header;
}

int ring_mod(int a, int n) { return ((a % n) + n) % n; }

}  // namespace

const char* collective_kind_name(CollectiveKind kind) {
  switch (kind) {
    case CollectiveKind::kAllReduce:
      return "all_reduce";
    case CollectiveKind::kBroadcast:
      return "broadcast";
    case CollectiveKind::kAllGather:
      return "all_gather";
    case CollectiveKind::kReduceScatter:
      return "reduce_scatter";
    case CollectiveKind::kBarrier:
      return "barrier";
  }
  return "unknown collective";
}

CollectiveHeader make_header(CollectiveKind kind, uint64_t count, DType dtype, ReduceOp op) {
  CollectiveHeader header;
  header.kind = kind;
  header.count = count;
  header.dtype = dtype;
  header.op = op;
  return header;
}

std::string collective_label(const CollectiveHeader& header) {
  return std::string(collective_kind_name(header.kind)) + " #" + std::to_string(header.sequence);
}

std::string describe_call(const CollectiveHeader& header) {
  std::ostringstream text;
  text << collective_kind_name(header.kind) << "(";
  if (header.kind != CollectiveKind::kBarrier) {
    text << "count=" << header.count << ", " << dtype_name(header.dtype);
    if (header.kind == CollectiveKind::kAllReduce ||
        header.kind == CollectiveKind::kReduceScatter) {
      text << ", " << reduce_op_name(header.op);
    } else if (header.kind == CollectiveKind::kBroadcast) {
      text << ", root=" << header.root;
    }
  }
  text << ")";
  return text.str();
}

void check_collective(Transport& transport, const CollectiveHeader& header,
                      Clock::time_point deadline, int tag) {
  const int n = transport.size(), rank = transport.rank();
  if (n == 1) return;
  const int left = ring_mod(rank - 1, n), right = ring_mod(rank + 1, n);
  const Words mine = encode_header(header);
  std::array<char, kHeaderMessageBytes> message;
  std::unique_ptr<Request> receive =
      transport.irecv_up_to(message.data(), message.size(), left, tag);
  std::unique_ptr<Request> send = transport.isend(mine.data(), sizeof(Words), right, tag);
  if (!transport.wait(*receive, deadline)) {
    throw CommTimeout(left, "collective check: timed out waiting for rank " + std::to_string(left));
  }
  if (!transport.wait(*send, deadline)) {
    throw CommTimeout(right,
                      "collective check: timed out sending to rank " + std::to_string(right));
  }
  check_header(header, rank, read_header(message.data(), receive->received(), left), left);
}

HeaderWords read_header(const char* message, std::size_t bytes, int peer) {
  DPT_CHECK_AS(ErrorKind::kComm, bytes >= sizeof(Words))
      << "rank " << peer << " sent a " << bytes
      << "-byte message where a collective header was expected";
  Words words;
  std::memcpy(words.data(), message, sizeof(Words));
  return words;
}

void check_header(const CollectiveHeader& header, int rank, const HeaderWords& theirs, int peer) {
  if (theirs == encode_header(header)) return;
  const CollectiveHeader other = decode(theirs);
  std::ostringstream text;
  text << collective_label(header) << ": rank " << rank << " called " << describe_call(header);
  if (other.sequence != header.sequence) text << " as collective #" << header.sequence;
  text << " but rank " << peer << " called " << describe_call(other);
  if (other.sequence != header.sequence) text << " as collective #" << other.sequence;
  throw Error(ErrorKind::kComm, text.str());
}

std::vector<int> find_missing_ranks(Transport& transport, uint64_t sequence,
                                    Clock::time_point grace_deadline, int tag) {
  const int n = transport.size(), rank = transport.rank();
  // Buffers are declared before the requests so they outlive any request still in flight.
  const uint64_t mine = sequence;
  std::vector<uint64_t> theirs(n, 0);
  std::vector<std::unique_ptr<Request>> receives(n), sends(n);
  for (int peer = 0; peer < n; ++peer) {
    if (peer == rank) continue;
    receives[peer] = transport.irecv(&theirs[peer], sizeof(uint64_t), peer, tag);
    sends[peer] = transport.isend(&mine, sizeof(uint64_t), peer, tag);
  }
  std::vector<int> missing;
  for (int peer = 0; peer < n; ++peer) {
    if (peer == rank) continue;
    if (!transport.wait(*receives[peer], grace_deadline) || theirs[peer] < sequence) {
      missing.push_back(peer);
    }
  }
  for (int peer = 0; peer < n; ++peer) {
    if (peer != rank) transport.wait(*sends[peer], grace_deadline);
  }
  return missing;
}

Error collective_timeout_error(Transport& transport, const CollectiveHeader& header,
                               double timeout_s, const CommTimeout& timeout, int tag) {
  const double grace_s = std::min(1.0, timeout_s / 4);
  const std::vector<int> missing =
      find_missing_ranks(transport, header.sequence, deadline_after(grace_s), tag);
  std::ostringstream text;
  text << collective_label(header) << " timed out after " << timeout_s << " s";
  if (missing.empty()) {
    if (timeout.waiting_for() >= 0) text << " waiting for rank " << timeout.waiting_for();
    text << "; every rank reached it";
  } else {
    text << "; ranks that did not arrive: ";
    for (std::size_t i = 0; i < missing.size(); ++i) text << (i > 0 ? ", " : "") << missing[i];
  }
  return Error(ErrorKind::kComm, text.str());
}

Clock::time_point deadline_after(double seconds) {
  // 1e8 s (three years) stands for "no deadline" without overflowing the clock's range.
  const double bounded = std::clamp(seconds, 0.0, 1e8);
  return Clock::now() +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(bounded));
}

}  // namespace dpt
