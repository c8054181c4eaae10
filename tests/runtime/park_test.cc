// Tests for runtime/sched/park.h: the park/ready protocol every primitive builds on. A ready
// handed over only after the park's commit; a commit that declines resumes at once; ParkUnlock
// releases its lock only once the goroutine is switched out; a ping-pong across workers that
// loses no wakeup and delivers every value in order; and the goroutine status machine under it
// (sched/internal/g.h): a change it does not have is fatal in checked builds, and readying a
// goroutine that is not parked is fatal in every build.
#include "runtime/sched/park.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>

#include "greenline/goroutine.h"
#include "greenline/runtime.h"
#include "greenline/wait_group.h"
#include "runtime/sched/internal/g.h"
#include "tests/util/child_process.h"

namespace greenline {
namespace {

using internal::G;
using testing::IsFatalError;
using testing::Procs;
using testing::RunInChild;

TEST(ParkTest, CommitRunsAfterSwitchAndReadyResumes) {
  std::atomic<G*> parked{nullptr};
  bool resumed = false;
  greenline::Run([&] {
    WaitGroup wg;
    wg.Add(1);
    Go([&] {
      internal::Park(
          WaitReason::kChanReceive,
          [](G* g, void* slot) {
            // The goroutine is switched out here: publishing it lets others Ready it.
            static_cast<std::atomic<G*>*>(slot)->store(g);
            return true;
          },
          &parked);
      resumed = true;
      wg.Done();
    });
    while (parked.load() == nullptr) Yield();
    EXPECT_EQ(internal::GoroutineIdOf(parked.load()), 2u);
    internal::Ready(parked.load());
    wg.Wait();
  });
  EXPECT_TRUE(resumed);
}

TEST(ParkTest, DecliningCommitResumesAtOnce) {
  int resumed = 0;
  greenline::Run([&] {
    internal::Park(
        WaitReason::kSelect, [](G*, void*) { return false; }, nullptr);
    ++resumed;
    StateCounts c = ReadStateCounts();
    EXPECT_EQ(c.blocking, 0) << "an abandoned park must not stay counted as blocking";
  });
  EXPECT_EQ(resumed, 1);
}

// A one-slot mailbox built directly on Park/Ready: the shape channels take.
struct Mailbox {
  SpinLock lock;
  G* waiter = nullptr;  // guarded by lock
  bool full = false;    // guarded by lock
  uint64_t value = 0;   // guarded by lock

  void Put(uint64_t v) {
    for (;;) {
      lock.lock();
      if (!full) {
        full = true;
        value = v;
        G* w = waiter;
        waiter = nullptr;
        lock.unlock();
        if (w != nullptr) internal::Ready(w);
        return;
      }
      waiter = internal::CurrentG();
      internal::ParkUnlock(WaitReason::kChanSend, &lock);
    }
  }

  uint64_t Take() {
    for (;;) {
      lock.lock();
      if (full) {
        full = false;
        uint64_t v = value;
        G* w = waiter;
        waiter = nullptr;
        lock.unlock();
        if (w != nullptr) internal::Ready(w);
        return v;
      }
      waiter = internal::CurrentG();
      internal::ParkUnlock(WaitReason::kChanReceive, &lock);
    }
  }
};

TEST(ParkTest, AnIllegalStatusChangeIsFatalInCheckedBuilds) {
  if (!internal::kCheckGStatus) GTEST_SKIP() << "release build: status changes are not checked";
  auto r = RunInChild([] {
    greenline::Run([] {
      // Running -> runnable is a yield, but this goroutine's G is running: claiming it was
      // waiting is a lie the check must catch.
      G* g = internal::CurrentG();
      internal::ChangeGStatus(g, GStatus::kWaiting, GStatus::kRunnable, std::memory_order_relaxed);
    });
  });
  EXPECT_TRUE(IsFatalError(
      r, "runtime: goroutine 1: illegal status change waiting -> runnable (it is running)"))
      << r.output;
  // And a change the machine does not have at all, from the status the G really has.
  r = RunInChild([] {
    greenline::Run([] {
      G* g = internal::CurrentG();
      internal::ChangeGStatus(g, GStatus::kRunning, GStatus::kIdle, std::memory_order_relaxed);
    });
  });
  EXPECT_TRUE(IsFatalError(
      r, "runtime: goroutine 1: illegal status change running -> idle (it is running)"))
      << r.output;
}

TEST(ParkTest, ReadyOfAGoroutineThatIsNotParkedIsFatal) {
  auto r = RunInChild([] {
    greenline::Run([] {
      G* self = internal::CurrentG();
      internal::Ready(self);  // running, not parked: a double ready would corrupt the run queues
    });
  });
  EXPECT_TRUE(IsFatalError(r, "runtime: Ready of goroutine 1, which is not waiting")) << r.output;
}

TEST(ParkStressTest, PingPongAcrossWorkersLosesNoWakeup) {
  constexpr uint64_t kRounds = 100'000;
  uint64_t received_sum = 0;
  bool in_order = true;
  greenline::Run(
      [&] {
        Mailbox ping, pong;
        WaitGroup wg;
        wg.Add(2);
        Go([&] {
          for (uint64_t i = 1; i <= kRounds; ++i) {
            ping.Put(i);
            if (pong.Take() != i) in_order = false;
          }
          wg.Done();
        });
        Go([&] {
          for (uint64_t i = 1; i <= kRounds; ++i) {
            uint64_t v = ping.Take();
            if (v != i) in_order = false;
            received_sum += v;
            pong.Put(v);
          }
          wg.Done();
        });
        wg.Wait();
      },
      Procs(2));
  EXPECT_TRUE(in_order);
  EXPECT_EQ(received_sum, kRounds * (kRounds + 1) / 2);
}

TEST(ParkStressTest, ManyPairsOnFourWorkers) {
  constexpr int kPairs = 50;
  constexpr uint64_t kRounds = 2000;
  std::atomic<uint64_t> total{0};
  greenline::Run(
      [&] {
        std::vector<Mailbox> boxes(kPairs);
        WaitGroup wg;
        for (int p = 0; p < kPairs; ++p) {
          wg.Add(2);
          Go([&, p] {
            for (uint64_t i = 1; i <= kRounds; ++i) boxes[p].Put(i);
            wg.Done();
          });
          Go([&, p] {
            uint64_t sum = 0;
            for (uint64_t i = 1; i <= kRounds; ++i) sum += boxes[p].Take();
            total.fetch_add(sum);
            wg.Done();
          });
        }
        wg.Wait();
      },
      Procs(4));
  EXPECT_EQ(total.load(), kPairs * kRounds * (kRounds + 1) / 2);
}

}  // namespace
}  // namespace greenline
