// Tests for greenline/state.h: Go's wait-reason names, which waits are "blocking" (only another
// goroutine can end them) and which count as running, and the per-state counts as goroutines
// sleep, block on a wait group and sit in blocking calls.
#include "greenline/state.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>

#include "greenline/goroutine.h"
#include "greenline/runtime.h"
#include "greenline/wait_group.h"
#include "tests/util/goroutines.h"

namespace greenline {
namespace {

using namespace std::chrono_literals;

TEST(StateTest, WaitReasonsUseGoNames) {
  EXPECT_EQ(WaitReasonName(WaitReason::kChanReceive), "chan receive");
  EXPECT_EQ(WaitReasonName(WaitReason::kChanSend), "chan send");
  EXPECT_EQ(WaitReasonName(WaitReason::kSelect), "select");
  EXPECT_EQ(WaitReasonName(WaitReason::kSelectNoCases), "select (no cases)");
  EXPECT_EQ(WaitReasonName(WaitReason::kSyncMutexLock), "sync.Mutex.Lock");
  EXPECT_EQ(WaitReasonName(WaitReason::kSyncWaitGroupWait), "sync.WaitGroup.Wait");
  EXPECT_EQ(WaitReasonName(WaitReason::kIOWait), "IO wait");
  EXPECT_EQ(WaitReasonName(WaitReason::kSleep), "sleep");
  EXPECT_EQ(WaitReasonName(WaitReason::kSyscall), "syscall");
  for (int r = 1; r < static_cast<int>(WaitReason::kCount); ++r) {
    EXPECT_FALSE(WaitReasonName(static_cast<WaitReason>(r)).empty()) << r;
    EXPECT_NE(WaitReasonName(static_cast<WaitReason>(r)), "?") << r;
  }
}

TEST(StateTest, SleepNetworkAndSyscallCountAsRunningChannelsAndSyncAsBlocking) {
  EXPECT_FALSE(IsBlocking(WaitReason::kSleep));
  EXPECT_FALSE(IsBlocking(WaitReason::kIOWait));
  EXPECT_FALSE(IsBlocking(WaitReason::kSyscall));
  EXPECT_FALSE(IsBlocking(WaitReason::kNone));
  EXPECT_TRUE(IsBlocking(WaitReason::kChanReceive));
  EXPECT_TRUE(IsBlocking(WaitReason::kChanSendNilChan));
  EXPECT_TRUE(IsBlocking(WaitReason::kSelectNoCases));
  EXPECT_TRUE(IsBlocking(WaitReason::kSyncMutexLock));
  EXPECT_TRUE(IsBlocking(WaitReason::kSyncWaitGroupWait));
  EXPECT_TRUE(IsBlocking(WaitReason::kSemacquire));
}

TEST(StateTest, CountsFollowGoroutinesThroughTheirStates) {
  StateCounts seen;
  greenline::Run(
      [&] {
        WaitGroup release, started;
        release.Add(1);
        started.Add(6);
        for (int i = 0; i < 3; ++i)
          Go([&] {
            started.Done();
            Sleep(10s);
          });
        for (int i = 0; i < 2; ++i)
          Go([&] {
            started.Done();
            release.Wait();
          });
        std::atomic<bool> stop{false};
        WaitGroup call_done;  // `stop` lives in this frame: outlive the pool thread's polling of it
        testing::GoBlockedInSyscall(stop, started, call_done);
        started.Wait();
        Sleep(50ms);  // let the last ones park
        seen = ReadStateCounts();
        stop = true;
        release.Done();
        call_done.Wait();
      },
      Options{});
  auto at = [&](WaitReason r) { return seen.by_reason[static_cast<int>(r)]; };
  EXPECT_EQ(seen.live, 7);  // main + 6
  EXPECT_EQ(at(WaitReason::kSleep), 3);
  EXPECT_EQ(at(WaitReason::kSyncWaitGroupWait), 2);
  EXPECT_EQ(at(WaitReason::kSyscall), 1);
  EXPECT_EQ(seen.blocking, 2);
  EXPECT_EQ(seen.running, 5);  // main executing, 3 asleep, 1 in a blocking call
  StateCounts after = ReadStateCounts();
  EXPECT_EQ(after.live, 0);
}

}  // namespace
}  // namespace greenline
