// ThreadWorld: mailboxes per (source, destination, tag), matched to posted receives in order.
#include "comm/thread_world.h"

#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "comm/shm_all_reduce.h"
#include "comm/transport.h"
#include "comm/transport_communicator.h"
#include "devices/error.h"

namespace dpt {
namespace {

using Channel = std::tuple<int, int, int>;  // source, destination, tag
struct ThreadRequest;

}  // namespace

struct ThreadWorld::State {
  explicit State(int n) : size(n) {}
  int size;
  std::mutex mutex;
  std::condition_variable changed;
  std::map<Channel, std::deque<std::vector<char>>> messages;
  std::map<Channel, std::deque<ThreadRequest*>> receives;
  int aborted_by = -1;
  // The ranks' shared-memory all-reduce regions (comm/shm_all_reduce.h), zeroed, 64-byte aligned.
  std::size_t chunk_bytes = 0, region_bytes = 0;
  std::unique_ptr<char, decltype(&std::free)> regions{nullptr, &std::free};
};

namespace {

// Throws kComm naming the aborting rank once any rank called abort(). Holds state.mutex.
void check_aborted(const ThreadWorld::State& state) {
  DPT_CHECK_AS(ErrorKind::kComm, state.aborted_by < 0)
      << "the job was aborted by rank " << state.aborted_by;
}

// A receive stays in its channel's queue until matched; one dropped unmatched (after a timeout)
// removes itself so a late message is not written into freed memory.
struct ThreadRequest : Request {
  ~ThreadRequest() override {
    if (state == nullptr) return;
    std::lock_guard<std::mutex> lock(state->mutex);
    if (done) return;
    auto& posted = state->receives[channel];
    for (auto it = posted.begin(); it != posted.end(); ++it) {
      if (*it == this) {
        posted.erase(it);
        break;
      }
    }
  }
  bool done = false;
  std::string error;     // receives: the message had another size
  void* data = nullptr;  // receives: where the bytes go
  std::size_t bytes = 0;
  bool exact = true;  // receives: false for irecv_up_to (shorter messages allowed)
  int peer = 0;
  ThreadWorld::State* state = nullptr;  // set for receives
  Channel channel;
};

class ThreadTransport : public Transport {
 public:
  ThreadTransport(ThreadWorld::State& state, int rank) : state_(state), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return state_.size; }

  std::unique_ptr<Request> isend(const void* data, std::size_t bytes, int peer, int tag) override {
    check_peer(peer);
    auto request = std::make_unique<ThreadRequest>();
    std::lock_guard<std::mutex> lock(state_.mutex);
    const char* begin = static_cast<const char*>(data);
    state_.messages[{rank_, peer, tag}].emplace_back(begin, begin + bytes);
    request->done = true;  // eager: the bytes are copied
    match({rank_, peer, tag});
    return request;
  }

  std::unique_ptr<Request> irecv(void* data, std::size_t bytes, int peer, int tag) override {
    return post_receive(data, bytes, peer, tag, true);
  }

  std::unique_ptr<Request> irecv_up_to(void* data, std::size_t capacity, int peer,
                                       int tag) override {
    return post_receive(data, capacity, peer, tag, false);
  }

  bool test(Request& base) override {
    auto& request = static_cast<ThreadRequest&>(base);
    std::lock_guard<std::mutex> lock(state_.mutex);
    check_aborted();
    return finished(request);
  }

  bool wait(Request& base, Clock::time_point deadline) override {
    auto& request = static_cast<ThreadRequest&>(base);
    std::unique_lock<std::mutex> lock(state_.mutex);
    while (true) {
      check_aborted();
      if (finished(request)) return true;
      if (state_.changed.wait_until(lock, deadline) == std::cv_status::timeout) {
        check_aborted();
        return finished(request);
      }
    }
  }

 private:
  std::unique_ptr<Request> post_receive(void* data, std::size_t bytes, int peer, int tag,
                                        bool exact) {
    check_peer(peer);
    auto request = std::make_unique<ThreadRequest>();
    request->data = data;
    request->bytes = bytes;
    request->exact = exact;
    request->peer = peer;
    request->state = &state_;
    request->channel = {peer, rank_, tag};
    std::lock_guard<std::mutex> lock(state_.mutex);
    state_.receives[{peer, rank_, tag}].push_back(request.get());
    match({peer, rank_, tag});
    return request;
  }

  // Done, or throws the receive's size error. Holds the lock.
  static bool finished(const ThreadRequest& request) {
    DPT_CHECK_AS(ErrorKind::kComm, request.error.empty()) << request.error;
    return request.done;
  }

  // Pairs queued messages with posted receives of one channel, oldest first; called by whichever
  // side, sender or receiver, comes second. Holds the lock.
  void match(const Channel& channel) {
    auto& queue = state_.messages[channel];
    auto& posted = state_.receives[channel];
    bool any = false;
    while (!queue.empty() && !posted.empty()) {
      ThreadRequest* request = posted.front();
      const std::vector<char>& message = queue.front();
      // As MPI does, a message of another size fails the receive (when it is waited for), not
      // the send, and is never copied.
      const bool fits =
          request->exact ? message.size() == request->bytes : message.size() <= request->bytes;
      if (!fits) {
        request->error = "rank " + std::to_string(std::get<1>(channel)) + " expected " +
                         std::to_string(request->bytes) + " bytes from rank " +
                         std::to_string(request->peer) + " but got " +
                         std::to_string(message.size()) +
                         ": the ranks disagree about this collective's size";
      } else {
        if (!message.empty()) std::memcpy(request->data, message.data(), message.size());
        request->set_received(message.size());
      }
      request->done = true;
      queue.pop_front();
      posted.pop_front();
      any = true;
    }
    if (any) state_.changed.notify_all();
  }

  void check_peer(int peer) const {
    DPT_CHECK(peer >= 0 && peer < state_.size)
        << "rank " << peer << " outside a world of " << state_.size;
  }
  void check_aborted() const { dpt::check_aborted(state_); }

  ThreadWorld::State& state_;
  int rank_;
};

class ThreadCommunicator : public TransportCommunicator {
 public:
  ThreadCommunicator(ThreadWorld::State& state, int rank, const CommOptions& options)
      : TransportCommunicator(transport_, options), transport_(state, rank), state_(state) {
    set_one_node(state.regions != nullptr);
    if (state.regions == nullptr) return;
    std::vector<char*> regions;
    for (int r = 0; r < state.size; ++r)
      regions.push_back(state.regions.get() + r * state.region_bytes);
    use_shared_memory(std::make_unique<ShmAllReduce>(regions, rank, state.chunk_bytes, [&state] {
      std::lock_guard<std::mutex> lock(state.mutex);
      check_aborted(state);
    }));
  }
  std::string backend() const override { return "threads"; }

 protected:
  // Threads share the address space: each rank allocates its own buffer, and the ranks swap the
  // addresses.
  std::shared_ptr<void> map_shared(std::size_t bytes, std::vector<char*>& bases,
                                   std::string& why) override {
    const std::size_t rounded = (bytes + 63) / 64 * 64;
    std::shared_ptr<void> memory(std::aligned_alloc(64, rounded), &std::free);
    DPT_CHECK(memory != nullptr) << "ThreadWorld: cannot allocate " << rounded << " bytes";
    std::memset(memory.get(), 0, rounded);
    const auto mine = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(memory.get()));
    std::vector<uint64_t> addresses(static_cast<std::size_t>(size()));
    all_gather(&mine, addresses.data(), 1, DType::kI64);
    bases.clear();
    for (uint64_t address : addresses) bases.push_back(reinterpret_cast<char*>(address));
    return memory;
  }

 public:
  void abort(int exit_code) noexcept override {
    {
      std::lock_guard<std::mutex> lock(state_.mutex);
      if (state_.aborted_by < 0) state_.aborted_by = rank();
    }
    state_.changed.notify_all();
  }

 private:
  ThreadTransport transport_;
  ThreadWorld::State& state_;
};

}  // namespace

ThreadWorld::ThreadWorld(int size, const CommOptions& options, bool shared_memory)
    : state_(std::make_unique<State>(size)), options_(options) {
  DPT_CHECK(size >= 1) << "ThreadWorld: size must be >= 1, got " << size;
  if (!shared_memory || options.all_reduce != AllReduceAlgorithm::kAuto ||
      options.shm_threshold_bytes == 0 || size == 1) {
    return;
  }
  state_->chunk_bytes = ShmAllReduce::chunk_for(options.chunk_bytes);
  state_->region_bytes = ShmAllReduce::region_bytes(state_->chunk_bytes);
  const std::size_t total = state_->region_bytes * static_cast<std::size_t>(size);
  state_->regions.reset(static_cast<char*>(std::aligned_alloc(64, total)));
  DPT_CHECK(state_->regions != nullptr) << "ThreadWorld: cannot allocate " << total << " bytes";
  std::memset(state_->regions.get(), 0, total);
}

ThreadWorld::~ThreadWorld() = default;

int ThreadWorld::size() const { return state_->size; }

std::unique_ptr<Communicator> ThreadWorld::communicator(int rank) {
  DPT_CHECK(rank >= 0 && rank < state_->size)
      << "ThreadWorld: rank " << rank << " outside a world of " << state_->size;
  return std::make_unique<ThreadCommunicator>(*state_, rank, options_);
}

std::unique_ptr<Communicator> ThreadWorld::communicator(int rank, Device& device) {
  DPT_CHECK(rank >= 0 && rank < state_->size)
      << "ThreadWorld: rank " << rank << " outside a world of " << state_->size;
  auto comm = std::make_unique<ThreadCommunicator>(*state_, rank, options_);
  comm->take_device_memory(device, false);
  return comm;
}

}  // namespace dpt
