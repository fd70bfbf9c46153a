// The NCCL backend's poll loop (comm/nccl_watchdog.h) with fake hooks, so its rules are checked
// on machines without a GPU: it returns when the work is done, and otherwise aborts exactly once
// and throws kComm naming the collective, its sequence number, the rank and the cause.
#include "comm/nccl_watchdog.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "comm/collective_check.h"
#include "devices/error.h"

namespace dpt {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

struct Fake {
  int polls_until_done = -1;  // -1: never done
  std::string error;          // reported from the first poll on
  bool abort_requested = false;
  int polls = 0;
  int aborts = 0;

  WatchHooks hooks() {
    WatchHooks h;
    h.done = [this] { return polls_until_done >= 0 && ++polls > polls_until_done; };
    h.failed = [this] { return error; };
    h.abort_requested = [this] { return abort_requested; };
    h.abort = [this] { ++aborts; };
    return h;
  }
};

// The kComm message watch_until_done throws, or "" (with a test failure) when it returns.
std::string error_of(Fake& fake, double timeout_s) {
  try {
    watch_until_done("all_reduce #7", 1, timeout_s, deadline_after(timeout_s), fake.hooks());
  } catch (const Error& error) {
    EXPECT_EQ(error.kind(), ErrorKind::kComm);
    return error.what();
  }
  ADD_FAILURE() << "watch_until_done returned";
  return "";
}

TEST(NcclWatchdog, ReturnsWhenTheWorkIsDone) {
  Fake fake;
  fake.polls_until_done = 0;
  watch_until_done("all_reduce #1", 0, 5, deadline_after(5), fake.hooks());
  EXPECT_EQ(fake.aborts, 0);
}

TEST(NcclWatchdog, KeepsPollingUntilDone) {
  Fake fake;
  fake.polls_until_done = 1000;
  watch_until_done("all_reduce #1", 0, 60, deadline_after(60), fake.hooks());
  EXPECT_EQ(fake.polls, 1001);
  EXPECT_EQ(fake.aborts, 0);
}

TEST(NcclWatchdog, TimeoutAbortsOnceAndNamesTheCollective) {
  Fake fake;
  EXPECT_THAT(error_of(fake, 0.05),
              AllOf(HasSubstr("nccl: all_reduce #7 on rank 1 timed out after 0.05 s"),
                    HasSubstr("communicator aborted")));
  EXPECT_EQ(fake.aborts, 1);
}

TEST(NcclWatchdog, TimeoutNamesTheMissingRanksAfterAborting) {
  Fake fake;
  WatchHooks hooks = fake.hooks();
  int aborts_before_missing = -1;
  hooks.missing = [&] {
    aborts_before_missing = fake.aborts;
    return std::string("ranks that did not arrive: 2, 3");
  };
  try {
    watch_until_done("all_reduce #7", 1, 0.05, deadline_after(0.05), hooks);
    ADD_FAILURE() << "watch_until_done returned";
  } catch (const Error& error) {
    EXPECT_THAT(error.what(), HasSubstr("all_reduce #7 on rank 1 timed out after 0.05 s; ranks "
                                        "that did not arrive: 2, 3; communicator aborted"));
  }
  EXPECT_EQ(aborts_before_missing, 1);
  EXPECT_EQ(fake.aborts, 1);
}

TEST(NcclWatchdog, AsyncErrorAbortsWithItsText) {
  Fake fake;
  fake.error = "remote process exited or there was a network error";
  EXPECT_THAT(error_of(fake, 60),
              HasSubstr("all_reduce #7 on rank 1 failed: remote process exited or there was a "
                        "network error; communicator aborted"));
  EXPECT_EQ(fake.aborts, 1);
}

TEST(NcclWatchdog, AbortRequestStopsTheWait) {
  Fake fake;
  fake.abort_requested = true;
  EXPECT_THAT(error_of(fake, 60), HasSubstr("all_reduce #7 on rank 1 was aborted on request"));
  EXPECT_EQ(fake.aborts, 1);
}

TEST(NcclWatchdog, DoneWinsOverALaterDeadline) {
  // Done on the first poll although the deadline has already passed: the result is there.
  Fake fake;
  fake.polls_until_done = 0;
  watch_until_done("barrier #2", 0, 0, deadline_after(0), fake.hooks());
  EXPECT_EQ(fake.aborts, 0);
}

}  // namespace
}  // namespace dpt
