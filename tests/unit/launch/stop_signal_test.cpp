// StopSignal: while it lives, SIGTERM and SIGINT are blocked in the thread that made it and in
// every thread started after it (the threads that run oneDNN's GEMM, which a signal handler must
// never interrupt), a signal sent to the process is still received (on StopSignal's own thread),
// a second signal exits at once with 128 + signal, and the destructor restores mask and handler.
#include "launch/stop_signal.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace dpt {
namespace {

// Whether `signal` is blocked in the calling thread.
bool blocked(int signal) {
  sigset_t mask;
  pthread_sigmask(SIG_BLOCK, nullptr, &mask);
  return sigismember(&mask, signal) == 1;
}

// Waits (bounded: a delivery takes microseconds) until `signals` reports a signal.
int wait_for(const StopSignal& signals) {
  for (int i = 0; i < 10000 && signals.received() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return signals.received();
}

TEST(StopSignal, BlocksBothSignalsInItsThreadAndInLaterThreadsWhileItLives) {
  ASSERT_FALSE(blocked(SIGTERM));
  ASSERT_FALSE(blocked(SIGINT));
  {
    StopSignal signals;
    EXPECT_TRUE(blocked(SIGTERM));
    EXPECT_TRUE(blocked(SIGINT));
    bool term = false, interrupt = false;
    std::thread([&] {
      term = blocked(SIGTERM);
      interrupt = blocked(SIGINT);
    }).join();
    EXPECT_TRUE(term) << "a thread started later (one that computes) could run the handler";
    EXPECT_TRUE(interrupt);
  }
  EXPECT_FALSE(blocked(SIGTERM));
  EXPECT_FALSE(blocked(SIGINT));
}

TEST(StopSignal, ASignalToTheProcessIsReceivedAndTheHandlerRestoredAfterwards) {
  struct sigaction before = {};
  sigaction(SIGTERM, nullptr, &before);
  {
    StopSignal signals;
    EXPECT_EQ(signals.received(), 0);
    // Sent while a thread that blocks it computes, as a scheduler sends it.
    std::thread busy([] {
      for (volatile int i = 0; i < 1000000; i = i + 1) {
      }
    });
    ASSERT_EQ(::kill(::getpid(), SIGTERM), 0);
    busy.join();
    EXPECT_EQ(wait_for(signals), SIGTERM);
  }
  struct sigaction after = {};
  sigaction(SIGTERM, nullptr, &after);
  EXPECT_EQ(after.sa_handler, before.sa_handler);
  // A new StopSignal starts without a request.
  StopSignal again;
  EXPECT_EQ(again.received(), 0);
}

TEST(StopSignalDeathTest, ASecondSignalExitsAtOnceWith128PlusTheSignal) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        StopSignal signals;
        ::kill(::getpid(), SIGTERM);
        if (wait_for(signals) != SIGTERM) _exit(1);
        ::kill(::getpid(), SIGINT);
        std::this_thread::sleep_for(std::chrono::seconds(60));
        _exit(2);
      },
      ::testing::ExitedWithCode(128 + SIGINT), "");
}

}  // namespace
}  // namespace dpt
