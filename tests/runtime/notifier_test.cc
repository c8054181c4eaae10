// Tests for greenline/notifier.h: a Notify before the Wait is kept, and many make one wake-up; a
// parked waiter is readied by a Notify from another worker or a plain thread; a producer/consumer
// pair across workers that takes everything after each wake-up loses no notification; a
// hibernating goroutine waits without a stack and shows so in the dump; a Notifier nobody can
// notify is a deadlock the runtime reports; and two waiters at once are a fatal error.
#include "greenline/notifier.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "greenline/dump.h"
#include "greenline/goroutine.h"
#include "greenline/mutex.h"
#include "greenline/runtime.h"
#include "greenline/wait_group.h"
#include "tests/util/child_process.h"
#include "tests/util/goroutines.h"

namespace greenline {
namespace {

using namespace std::chrono_literals;
using testing::AwaitParked;
using testing::IsFatalError;
using testing::Procs;
using testing::RunRuntimeInChild;

TEST(NotifierTest, NotificationsBeforeTheWaitCoalesceIntoOne) {
  bool first = false, second = true;
  greenline::Run([&] {
    Notifier n;
    for (int i = 0; i < 5; ++i) n.Notify();
    n.Wait();  // returns at once: the permit is set
    first = true;
    second = n.TryWait();  // five Notify calls, one permit
  });
  EXPECT_TRUE(first);
  EXPECT_FALSE(second);
}

TEST(NotifierTest, AParkedWaiterIsReadiedByANotifyFromAnotherWorkerOrAThread) {
  std::atomic<int> woke{0};
  greenline::Run(
      [&] {
        Notifier n;
        WaitGroup done;
        done.Add(1);
        Go([&] {
          n.Wait();
          ++woke;
          n.Wait();
          ++woke;
          done.Done();
        });
        ASSERT_TRUE(AwaitParked(WaitReason::kSyncNotifierWait, 1));
        n.Notify();  // from a goroutine
        for (int i = 0; i < 5000 && woke < 1; ++i) Sleep(1ms);
        ASSERT_TRUE(AwaitParked(WaitReason::kSyncNotifierWait, 1));
        std::thread t([&] { n.Notify(); });  // from a plain thread
        t.join();
        done.Wait();
      },
      Procs(2));
  EXPECT_EQ(woke, 2);
}

TEST(NotifierStressTest, AConsumerThatTakesAllAfterEachWakeUpLosesNothing) {
  constexpr int kProducers = 4;
  constexpr int kItems = 20000;  // per producer
  int64_t taken = 0;
  int64_t wakeups = 0;
  greenline::Run(
      [&] {
        Notifier ready;
        std::mutex mu;  // short sections, never across a park
        std::vector<int> queue;
        WaitGroup producers;
        for (int p = 0; p < kProducers; ++p) {
          producers.Add(1);
          Go([&] {
            for (int i = 0; i < kItems; ++i) {
              {
                std::lock_guard<std::mutex> lock(mu);
                queue.push_back(i);
              }
              ready.Notify();
              if (i % 64 == 0) Yield();
            }
            producers.Done();
          });
        }
        std::vector<int> batch;
        while (taken < int64_t{kProducers} * kItems) {
          ready.Wait();
          ++wakeups;
          {
            std::lock_guard<std::mutex> lock(mu);
            batch.swap(queue);
          }
          taken += static_cast<int64_t>(batch.size());
          batch.clear();
        }
        producers.Wait();
      },
      Procs(4));
  EXPECT_EQ(taken, int64_t{kProducers} * kItems);
  EXPECT_LE(wakeups, taken);  // coalesced, never more wake-ups than items
}

TEST(NotifierTest, AHibernatingWaiterHoldsNoStackAndRunsItsNextStepWhenNotified) {
  std::string dump;
  int steps = 0;
  greenline::Run([&] {
    Notifier n;
    WaitGroup done;
    done.Add(1);
    GoHibernating([&]() -> Resume {
      if (++steps == 1) return n.ResumeWhenNotified();
      done.Done();
      return Resume::Done();
    });
    ASSERT_TRUE(AwaitParked(WaitReason::kSyncNotifierWait, 1));
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    std::thread reader([&] {
      char buf[4096];
      ssize_t r;
      while ((r = read(fds[0], buf, sizeof buf)) > 0) dump.append(buf, static_cast<size_t>(r));
    });
    Blocking([&] { WriteGoroutineDump(fds[1]); });
    close(fds[1]);
    reader.join();
    close(fds[0]);
    n.Notify();
    done.Wait();
  });
  EXPECT_EQ(steps, 2);
  EXPECT_NE(dump.find("[sync.Notifier.Wait]:"), std::string::npos) << dump;
  EXPECT_NE(dump.find("(hibernating: no stack until its next step)"), std::string::npos) << dump;
}

TEST(NotifierTest, AHibernatingWaiterWithThePermitSetRunsOnWithoutParking) {
  int steps = 0;
  greenline::Run([&] {
    Notifier n;
    n.Notify();
    WaitGroup done;
    done.Add(1);
    GoHibernating([&]() -> Resume {
      if (++steps == 1) return n.ResumeWhenNotified();
      EXPECT_FALSE(n.TryWait());  // the wait took the permit
      done.Done();
      return Resume::Done();
    });
    done.Wait();
  });
  EXPECT_EQ(steps, 2);
}

TEST(NotifierTest, AWaiterNobodyCanNotifyIsADeadlock) {
  auto r = RunRuntimeInChild([] {
    Notifier n;
    n.Wait();
  });
  EXPECT_TRUE(IsFatalError(r, "all goroutines are asleep - deadlock!")) << r.output;
  EXPECT_NE(r.output.find("[sync.Notifier.Wait]"), std::string::npos) << r.output;
}

TEST(NotifierTest, TwoWaitersAtOnceAreAFatalError) {
  auto r = RunRuntimeInChild([] {
    Notifier n;
    Go([&] { n.Wait(); });
    AwaitParked(WaitReason::kSyncNotifierWait, 1);
    n.Wait();
  });
  EXPECT_TRUE(IsFatalError(r, "sync: Notifier::Wait by two goroutines at once")) << r.output;
}

TEST(NotifierTest, APlainThreadCanWait) {
  std::atomic<bool> returned{false};
  greenline::Run([&] {
    Notifier n;
    std::thread t([&] {
      n.Wait();  // polls: a plain thread has nothing to park
      returned = true;
    });
    Sleep(10ms);
    n.Notify();
    Blocking([&] { t.join(); });
  });
  EXPECT_TRUE(returned);
}

}  // namespace
}  // namespace greenline
