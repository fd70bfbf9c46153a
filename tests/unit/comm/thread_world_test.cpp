// The collective layer on the in-process thread world: the conformance suite
// (tests/comm_conformance.h) with 1..5 ranks and several algorithm options, ring results that do
// not depend on the chunk size, barrier causality, and the fault paths: a missing rank times out
// naming it, mismatched calls are refused before data moves, abort() releases every peer.
// Every test bounds its threads' run time, so a hang fails the test instead of stalling ctest.
#include "comm/thread_world.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "comm_conformance.h"
#include "devices/error.h"

namespace dpt {
namespace {

using Seconds = std::chrono::duration<double>;

// What one rank's body did: the dpt::Error it threw (if any) and how long it ran.
struct Outcome {
  bool threw = false;
  ErrorKind kind = ErrorKind::kInternal;
  std::string message;
  double seconds = 0;
};

// Runs body(rank, comm) on one thread per rank. abort_on_error: a rank that throws aborts the
// world, as launch/ does. Past `bound_s` the world is aborted so every thread ends; the test then
// fails. Other exceptions are reported as failures.
std::vector<Outcome> run_ranks(ThreadWorld& world,
                               const std::function<void(int, Communicator&)>& body,
                               bool abort_on_error = false, double bound_s = 60) {
  const int n = world.size();
  std::vector<std::unique_ptr<Communicator>> comms;
  for (int rank = 0; rank < n; ++rank) comms.push_back(world.communicator(rank));
  std::vector<Outcome> outcomes(static_cast<std::size_t>(n));
  std::mutex mutex;
  std::condition_variable finished;
  int running = n;
  std::vector<std::thread> threads;
  for (int rank = 0; rank < n; ++rank) {
    threads.emplace_back([&, rank] {
      Outcome& outcome = outcomes[static_cast<std::size_t>(rank)];
      const auto start = std::chrono::steady_clock::now();
      try {
        body(rank, *comms[static_cast<std::size_t>(rank)]);
      } catch (const Error& error) {
        outcome.threw = true;
        outcome.kind = error.kind();
        outcome.message = error.what();
        if (abort_on_error) comms[static_cast<std::size_t>(rank)]->abort(6);
      } catch (const std::exception& error) {
        ADD_FAILURE() << "rank " << rank << " threw a non-dpt exception: " << error.what();
      }
      outcome.seconds = Seconds(std::chrono::steady_clock::now() - start).count();
      std::lock_guard<std::mutex> lock(mutex);
      --running;
      finished.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> lock(mutex);
    if (!finished.wait_for(lock, Seconds(bound_s), [&] { return running == 0; })) {
      ADD_FAILURE() << running << " ranks still running after " << bound_s << " s; aborting";
      lock.unlock();
      comms[0]->abort(6);
    }
  }
  for (std::thread& thread : threads) thread.join();
  return outcomes;
}

// Lets threads start a collective at the same moment.
class StartLine {
 public:
  explicit StartLine(int n) : waiting_(n) {}
  void arrive_and_wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    if (--waiting_ == 0) go_.notify_all();
    go_.wait(lock, [&] { return waiting_ == 0; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable go_;
  int waiting_;
};

CommOptions options_with(double timeout_s, AllReduceAlgorithm algorithm = AllReduceAlgorithm::kAuto,
                         std::size_t chunk_bytes = 1 << 20) {
  CommOptions options;
  options.timeout_s = timeout_s;
  options.all_reduce = algorithm;
  options.chunk_bytes = chunk_bytes;
  return options;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// ---- Conformance ------------------------------------------------------------------------------

struct Variant {
  const char* name;
  AllReduceAlgorithm algorithm;
  std::size_t chunk_bytes;
  bool large;
  bool shared_memory = true;  // auto: the shared-memory all-reduce (else the messages' algorithms)
};

constexpr Variant kVariants[] = {
    {"auto", AllReduceAlgorithm::kAuto, 1 << 20, true},
    {"auto_shm_chunk64", AllReduceAlgorithm::kAuto, 64, false},
    {"auto_messages", AllReduceAlgorithm::kAuto, 1 << 20, true, false},
    {"ring_chunk64", AllReduceAlgorithm::kRing, 64, false},
    {"native_chunk4k", AllReduceAlgorithm::kNative, 4096, false},
};

class Conformance : public ::testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(Conformance, Suite) {
  const int n = std::get<0>(GetParam());
  const Variant& variant = kVariants[std::get<1>(GetParam())];
  ThreadWorld world(n, options_with(60, variant.algorithm, variant.chunk_bytes),
                    variant.shared_memory);
  std::vector<conformance::Report> reports(static_cast<std::size_t>(n));
  conformance::SuiteOptions suite;
  suite.seed = static_cast<uint64_t>(n * 10 + std::get<1>(GetParam()));
  suite.large = variant.large;
  const auto outcomes = run_ranks(
      world,
      [&](int rank, Communicator& comm) {
        EXPECT_EQ(comm.rank(), rank);
        EXPECT_EQ(comm.size(), n);
        EXPECT_EQ(comm.backend(), "threads");
        conformance::run_suite(comm, reports[static_cast<std::size_t>(rank)], suite);
      },
      /*abort_on_error=*/true, 120);
  for (int rank = 0; rank < n; ++rank) {
    EXPECT_FALSE(outcomes[rank].threw) << "rank " << rank << ": " << outcomes[rank].message;
    const conformance::Report& report = reports[static_cast<std::size_t>(rank)];
    EXPECT_GT(report.checks, 800) << "rank " << rank;
    EXPECT_EQ(report.failed, 0) << "rank " << rank;
    for (const std::string& failure : report.failures) ADD_FAILURE() << failure;
  }
}

INSTANTIATE_TEST_SUITE_P(CommThreadWorld, Conformance,
                         ::testing::Combine(::testing::Range(1, 6), ::testing::Range(0, 5)),
                         [](const ::testing::TestParamInfo<std::tuple<int, int>>& info) {
                           return std::to_string(std::get<0>(info.param)) + "ranks_" +
                                  kVariants[std::get<1>(info.param)].name;
                         });

// The ring reduces every element in one fixed order whatever the chunk size, so random float
// sums come out bit-identical for every chunk_bytes (including sizes that are not a multiple of
// the element size) and algorithm.
TEST(CommThreadWorldRing, ResultsDoNotDependOnChunkSize) {
  for (int n : {3, 4}) {
    for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16, DType::kF64}) {
      const std::size_t count = 2003;
      std::vector<uint64_t> fingerprints;
      for (std::size_t chunk : {std::size_t{4}, std::size_t{7}, std::size_t{64}, std::size_t{4096},
                                std::size_t{1} << 20}) {
        ThreadWorld world(n, options_with(30, AllReduceAlgorithm::kRing, chunk));
        std::vector<uint64_t> results(static_cast<std::size_t>(n));
        const auto outcomes = run_ranks(world, [&](int rank, Communicator& comm) {
          std::vector<char> data =
              conformance::make_input(dtype, conformance::Pattern::kRandom, 77, rank, count);
          comm.all_reduce(data.data(), data.data(), count, dtype, ReduceOp::kSum);
          results[static_cast<std::size_t>(rank)] =
              conformance::fingerprint(data.data(), data.size());
        });
        for (int rank = 0; rank < n; ++rank) {
          ASSERT_FALSE(outcomes[rank].threw) << outcomes[rank].message;
          EXPECT_EQ(results[rank], results[0]) << "rank " << rank << ", chunk " << chunk;
        }
        fingerprints.push_back(results[0]);
      }
      for (uint64_t f : fingerprints) {
        EXPECT_EQ(f, fingerprints[0]) << n << " ranks, " << dtype_name(dtype);
      }
    }
  }
}

// A rank that sleeps before the barrier holds everyone: no rank leaves before it entered.
TEST(CommThreadWorldBarrier, NoRankLeavesBeforeTheLastEnters) {
  const int n = 4;
  ThreadWorld world(n, options_with(30));
  std::atomic<int64_t> entered{0};
  std::vector<int64_t> left(n, 0);
  auto now_ns = [] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  };
  const auto outcomes = run_ranks(world, [&](int rank, Communicator& comm) {
    comm.barrier();
    if (rank == 2) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      entered = now_ns();
    }
    comm.barrier();
    left[rank] = now_ns();
  });
  for (int rank = 0; rank < n; ++rank) {
    ASSERT_FALSE(outcomes[rank].threw) << outcomes[rank].message;
    EXPECT_GE(left[rank], entered.load()) << "rank " << rank << " left the barrier early";
  }
}

// ---- Faults -----------------------------------------------------------------------------------

// Rank 2 never calls all_reduce: the others fail after the timeout (not before, not much later)
// naming the collective, its number and rank 2 alone.
TEST(CommThreadWorldFaults, MissingRankTimesOutNamingIt) {
  const int n = 4;
  ThreadWorld world(n, options_with(0.5));
  StartLine start(n);
  std::atomic<int> done{0};
  const auto outcomes = run_ranks(world, [&](int rank, Communicator& comm) {
    start.arrive_and_wait();
    if (rank == 2) {
      while (done.load() < n - 1) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      return;
    }
    std::vector<float> data(1000, 1.0f);
    try {
      comm.all_reduce(data.data(), data.data(), data.size(), DType::kF32, ReduceOp::kSum);
    } catch (...) {
      ++done;
      throw;
    }
    ++done;
  });
  for (int rank : {0, 1, 3}) {
    const Outcome& outcome = outcomes[rank];
    ASSERT_TRUE(outcome.threw) << "rank " << rank;
    EXPECT_EQ(outcome.kind, ErrorKind::kComm);
    EXPECT_TRUE(contains(outcome.message, "all_reduce #1 timed out")) << outcome.message;
    const std::string tail = "ranks that did not arrive: 2";
    EXPECT_TRUE(outcome.message.size() >= tail.size() &&
                outcome.message.compare(outcome.message.size() - tail.size(), tail.size(), tail) ==
                    0)
        << outcome.message;
    EXPECT_GE(outcome.seconds, 0.45) << outcome.message;
    EXPECT_LT(outcome.seconds, 5.0) << outcome.message;  // bounded (a loaded machine adds seconds)
  }
  EXPECT_FALSE(outcomes[2].threw);
}

// A rank slower than the others but within the timeout is waited for. The timeout is far from
// the 300 ms: on a loaded machine the late rank's thread may wait long to be scheduled again.
TEST(CommThreadWorldFaults, LateRankWithinTimeoutIsWaitedFor) {
  const int n = 3;
  ThreadWorld world(n, options_with(30));
  const auto outcomes = run_ranks(world, [&](int rank, Communicator& comm) {
    if (rank == 1) std::this_thread::sleep_for(std::chrono::milliseconds(300));
    int64_t value = rank + 1;
    comm.all_reduce(&value, &value, 1, DType::kI64, ReduceOp::kSum);
    EXPECT_EQ(value, 6);
  });
  for (const Outcome& outcome : outcomes) EXPECT_FALSE(outcome.threw) << outcome.message;
}

// The timeout of the worlds whose ranks disagree: long, so that a refusal by the check can never
// be mistaken for one by the timeout however slow a loaded machine is (the rank that refuses
// aborts (run_ranks with abort_on_error), which releases the others at once; the tests do not
// wait for the timeout).
constexpr double kRefusalTimeoutS = 30;

// Which ranks see a difference first depends on the algorithm (ring neighbours for the header
// check of large collectives, recursive-doubling partners for small all-reduces); what must hold:
// every rank fails with kComm and at least one names both calls before the timeout. Returns the
// ranks that named them.
std::vector<int> expect_refused(const std::vector<Outcome>& outcomes,
                                const std::vector<std::string>& names) {
  std::vector<int> naming;
  for (std::size_t rank = 0; rank < outcomes.size(); ++rank) {
    const Outcome& outcome = outcomes[rank];
    EXPECT_TRUE(outcome.threw) << "rank " << rank;
    EXPECT_EQ(outcome.kind, ErrorKind::kComm) << outcome.message;
    bool all = true;
    for (const std::string& name : names) all = all && contains(outcome.message, name);
    if (!all) continue;
    naming.push_back(static_cast<int>(rank));
    EXPECT_LT(outcome.seconds, kRefusalTimeoutS / 2)
        << "refused by timeout, not by the check: " << outcome.message;
  }
  EXPECT_FALSE(naming.empty()) << "no rank named " << names[0] << " and " << names[1];
  return naming;
}

// Rank 1 asks for 999 elements, the others for 1000, with both all-reduce algorithms.
TEST(CommThreadWorldFaults, CountMismatchIsRefusedBeforeDataMoves) {
  const int n = 3;
  for (int variant = 0; variant < 3; ++variant) {  // shared memory, recursive doubling, ring
    CommOptions options = options_with(kRefusalTimeoutS);
    options.all_reduce = variant == 2 ? AllReduceAlgorithm::kRing : AllReduceAlgorithm::kAuto;
    ThreadWorld world(n, options, variant == 0);
    std::vector<char> untouched(n, 0);  // not vector<bool>: threads write it
    const auto outcomes = run_ranks(
        world,
        [&](int rank, Communicator& comm) {
          const std::size_t count = rank == 1 ? 999 : 1000;
          std::vector<float> send(count, 1.0f), recv(count, -7.0f);
          try {
            comm.all_reduce(send.data(), recv.data(), count, DType::kF32, ReduceOp::kSum);
          } catch (...) {
            untouched[rank] =
                std::all_of(recv.begin(), recv.end(), [](float v) { return v == -7.0f; });
            throw;
          }
        },
        /*abort_on_error=*/true);
    // A rank that saw the difference refused before moving any data.
    for (int rank : expect_refused(outcomes, {"all_reduce #1", "count=999", "count=1000"})) {
      EXPECT_TRUE(untouched[rank]) << "rank " << rank << " wrote its receive buffer";
    }
  }
}

// Rank 1 all-reduces a buffer of its own where the others pass their allocate_shared buffer:
// refused by every rank before any buffer is written.
TEST(CommThreadWorldFaults, SharedAndOwnBuffersMixedAreRefused) {
  const int n = 3;
  ThreadWorld world(n, options_with(kRefusalTimeoutS));
  std::vector<char> untouched(n, 0);
  const auto outcomes = run_ranks(
      world,
      [&](int rank, Communicator& comm) {
        const std::shared_ptr<void> memory = comm.allocate_shared(100 * sizeof(float));
        ASSERT_NE(memory, nullptr);
        std::vector<float> own(100, 2.0f);
        float* data = rank == 1 ? own.data() : static_cast<float*>(memory.get()) + 4;
        std::fill(data, data + 50, 2.0f);
        try {
          comm.all_reduce(data, data, 50, DType::kF32, ReduceOp::kSum);
        } catch (...) {
          untouched[rank] = std::all_of(data, data + 50, [](float v) { return v == 2.0f; });
          throw;
        }
      },
      /*abort_on_error=*/true);
  for (int rank :
       expect_refused(outcomes, {"all_reduce #", "byte offset 16", "a buffer of its own"})) {
    EXPECT_TRUE(untouched[rank]) << "rank " << rank << " wrote its buffer";
  }
}

// allocate_shared is collective and gives null on every rank when the sizes differ, and always
// without shared memory (the message-based world).
TEST(CommThreadWorld, AllocateSharedNullWhenSizesDifferOrNoSharedMemory) {
  for (bool shared_memory : {true, false}) {
    ThreadWorld world(2, options_with(5), shared_memory);
    const auto outcomes = run_ranks(world, [&](int rank, Communicator& comm) {
      EXPECT_EQ(comm.allocate_shared(rank == 0 ? 64 : 128), nullptr);
      const std::shared_ptr<void> same = comm.allocate_shared(256);
      EXPECT_EQ(same != nullptr, shared_memory) << "rank " << rank;
      if (same != nullptr) {
        EXPECT_EQ(reinterpret_cast<uintptr_t>(same.get()) % 64, 0u);
        const char* bytes = static_cast<const char*>(same.get());
        EXPECT_TRUE(std::all_of(bytes, bytes + 256, [](char c) { return c == 0; }));
      }
    });
    for (const Outcome& outcome : outcomes) EXPECT_FALSE(outcome.threw) << outcome.message;
  }
}

// Same for dtypes (rank 0 sends float64, the others float32) and for different collectives, with
// and without shared memory.
class KindMismatch : public ::testing::TestWithParam<bool> {};

TEST_P(KindMismatch, DTypeAndKindMismatchesAreRefused) {
  const int n = 3;
  {
    ThreadWorld world(n, options_with(kRefusalTimeoutS), GetParam());
    const auto outcomes = run_ranks(
        world,
        [&](int rank, Communicator& comm) {
          std::vector<double> data(10, 1.0);
          comm.all_reduce(data.data(), data.data(), 10, rank == 0 ? DType::kF64 : DType::kF32,
                          ReduceOp::kSum);
        },
        /*abort_on_error=*/true);
    expect_refused(outcomes, {"float64", "float32"});
  }
  {
    ThreadWorld world(n, options_with(kRefusalTimeoutS), GetParam());
    const auto outcomes = run_ranks(
        world,
        [&](int rank, Communicator& comm) {
          float value = 1.0f;
          if (rank == 1) {
            comm.barrier();
          } else {
            comm.all_reduce(&value, &value, 1, DType::kF32, ReduceOp::kMax);
          }
        },
        /*abort_on_error=*/true);
    expect_refused(outcomes, {"barrier()", "all_reduce(count=1, float32, max)"});
  }
}

INSTANTIATE_TEST_SUITE_P(CommThreadWorldFaults, KindMismatch, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "shared_memory" : "messages";
                         });

// abort() by rank 0 releases ranks blocked in a collective long before the timeout, and every
// later collective fails at once; the first aborting rank is the one named.
TEST(CommThreadWorldFaults, AbortReleasesPendingCollectives) {
  const int n = 3;
  ThreadWorld world(n, options_with(30));
  std::vector<std::string> later(n);
  const auto outcomes = run_ranks(world, [&](int rank, Communicator& comm) {
    if (rank == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      comm.abort(6);
      comm.abort(6);  // safe more than once
      return;
    }
    std::vector<float> data(1000, 1.0f);
    try {
      comm.all_reduce(data.data(), data.data(), data.size(), DType::kF32, ReduceOp::kSum);
    } catch (const Error&) {
      if (rank == 1) comm.abort(6);
      try {
        comm.barrier();
      } catch (const Error& error) {
        later[rank] = error.what();
      }
      throw;
    }
  });
  EXPECT_FALSE(outcomes[0].threw);
  for (int rank : {1, 2}) {
    ASSERT_TRUE(outcomes[rank].threw) << "rank " << rank;
    EXPECT_EQ(outcomes[rank].kind, ErrorKind::kComm);
    EXPECT_TRUE(contains(outcomes[rank].message, "aborted by rank 0")) << outcomes[rank].message;
    EXPECT_LT(outcomes[rank].seconds, 5.0);
    EXPECT_TRUE(contains(later[rank], "aborted by rank 0")) << "later barrier: " << later[rank];
  }
}

// Bad arguments are refused on the calling rank without a collective.
TEST(CommThreadWorldFaults, BroadcastRootOutsideTheWorld) {
  ThreadWorld world(2, options_with(5));
  const auto outcomes = run_ranks(world, [&](int rank, Communicator& comm) {
    int32_t value = 0;
    comm.broadcast(&value, 1, DType::kI32, 2);
  });
  for (const Outcome& outcome : outcomes) {
    ASSERT_TRUE(outcome.threw);
    EXPECT_EQ(outcome.kind, ErrorKind::kComm);
    EXPECT_TRUE(contains(outcome.message, "root 2")) << outcome.message;
  }
}

}  // namespace
}  // namespace dpt
