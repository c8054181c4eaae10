// Tests for greenline/wait_group.h, and through it the deadlock detector end to end: Wait
// returns when the counter reaches zero, from goroutines and plain threads; a negative counter
// panics; every goroutine blocked on wait groups is reported as Go reports it (exit 2); goroutines
// asleep or with timers pending are not; and hand-offs under load never trip the detector.
#include "greenline/wait_group.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "greenline/goroutine.h"
#include "greenline/runtime.h"
#include "greenline/runtime_error.h"
#include "runtime/sched/timer.h"
#include "tests/util/child_process.h"

namespace greenline {
namespace {

using namespace std::chrono_literals;
using testing::RunInChild;

TEST(WaitGroupTest, WaitReturnsWhenAllAreDone) {
  std::atomic<int> done{0};
  int seen = -1;
  greenline::Run([&] {
    WaitGroup wg;
    for (int i = 0; i < 1000; ++i) {
      wg.Add(1);
      Go([&] {
        Yield();
        done.fetch_add(1);
        wg.Done();
      });
    }
    wg.Wait();
    seen = done.load();
  });
  EXPECT_EQ(seen, 1000);
}

TEST(WaitGroupTest, WaitOnZeroReturnsAtOnceAndManyWaitersAllWake) {
  std::atomic<int> woke{0};
  greenline::Run([&] {
    WaitGroup zero;
    zero.Wait();
    WaitGroup gate, all;
    gate.Add(1);
    for (int i = 0; i < 50; ++i) {
      all.Add(1);
      Go([&] {
        gate.Wait();
        woke.fetch_add(1);
        all.Done();
      });
    }
    Sleep(10ms);
    gate.Done();
    all.Wait();
  });
  EXPECT_EQ(woke.load(), 50);
}

TEST(WaitGroupTest, DoneFromAPlainThreadWakesAGoroutine) {
  bool woke = false;
  greenline::Run([&] {
    WaitGroup wg;
    wg.Add(1);
    std::thread t([&] {
      std::this_thread::sleep_for(20ms);
      wg.Done();
    });
    // A sleeping helper goroutine keeps the runtime from looking deadlocked meanwhile: the
    // detector cannot see plain threads.
    Go([&] { Sleep(200ms); });
    wg.Wait();
    woke = true;
    t.join();
  });
  EXPECT_TRUE(woke);
}

TEST(WaitGroupStressTest, AWaitGroupOnTheStackPerRoundAcrossWorkers) {
  // Go's lifetime rule: a WaitGroup may die as soon as Wait returns, even while the Done that
  // released it is still returning. Many goroutines each wait on a fresh WaitGroup at the same
  // stack address round after round, released from other workers: any touch of the WaitGroup after
  // the final Done corrupts the next round (a lost wakeup: the child stalls; or a negative
  // counter).
  auto r = RunInChild(
      [] {
        for (int run = 0; run < 40; ++run) {
          greenline::Run(
              [&] {
                WaitGroup all;
                for (int i = 0; i < 64; ++i) {
                  all.Add(1);
                  Go([&all, i] {
                    for (int k = 0; k < 20; ++k) {
                      WaitGroup inner;
                      inner.Add(1);
                      Go([&inner, i, k] {
                        if ((i + k) % 3 == 0) Sleep(std::chrono::microseconds(50));
                        if ((i + k) % 3 == 1) Yield();
                        inner.Done();
                      });
                      inner.Wait();
                    }
                    all.Done();
                  });
                }
                all.Wait();
              },
              testing::Procs(2 + run % 4));
        }
        std::fputs("all rounds done\n", stdout);
      },
      60);
  ASSERT_TRUE(r.exited) << "stalled (a lost wakeup)\n" << r.output;
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("all rounds done"), std::string::npos) << r.output;
}

TEST(WaitGroupTest, NegativeCounterPanicsAsGoDoes) {
  std::string what;
  WaitGroup caught;
  try {
    caught.Done();
  } catch (const RuntimeError& e) {
    what = e.what();
  }
  EXPECT_EQ(what, "sync: negative WaitGroup counter");
  auto r = RunInChild([] {
    greenline::Run([] {
      WaitGroup wg;
      wg.Done();
    });
  });
  ASSERT_TRUE(r.exited) << r.output;
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("panic: sync: negative WaitGroup counter\n\ngoroutine 1 [running]:"),
            std::string::npos)
      << r.output;
}

TEST(DeadlockTest, AllGoroutinesBlockedIsReportedLikeGo) {
  auto r = RunInChild([] {
    greenline::Run([] {
      WaitGroup never;
      never.Add(1);
      for (int i = 0; i < 3; ++i) Go([&] { never.Wait(); });
      never.Wait();
    });
  });
  ASSERT_TRUE(r.exited) << r.output;
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("fatal error: all goroutines are asleep - deadlock!"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("goroutine 1 [sync.WaitGroup.Wait]:"), std::string::npos) << r.output;
}

TEST(DeadlockTest, SleepingGoroutinesAreNotADeadlock) {
  auto r = RunInChild([] {
    greenline::Run([] {
      WaitGroup wg;
      wg.Add(1);
      Go([&] {
        Sleep(300ms);  // asleep counts as running: the wait below will end
        wg.Done();
      });
      wg.Wait();
    });
    std::fputs("finished\n", stdout);
  });
  ASSERT_TRUE(r.exited) << r.output;
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("finished"), std::string::npos);
}

TEST(DeadlockTest, PendingTimerIsNotADeadlock) {
  auto r = RunInChild([] {
    greenline::Run([] {
      WaitGroup wg;
      wg.Add(1);
      internal::Timer t;
      t.when = internal::Nanotime() + 200'000'000;
      t.arg = &wg;
      t.fn = [](internal::Timer* timer, int64_t) { static_cast<WaitGroup*>(timer->arg)->Done(); };
      internal::AddTimer(&t);
      wg.Wait();  // every goroutine blocks, but a timer will unblock it (Go's time.AfterFunc)
    });
  });
  ASSERT_TRUE(r.exited) << r.output;
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST(DeadlockStressTest, HandOffsUnderLoadNeverLookDeadlocked) {
  // Waves of goroutines on four workers, each wave waiting on the previous through wait groups:
  // at every instant some goroutine is runnable or about to be readied, so the detector (which
  // runs whenever the last worker goes idle) must stay silent.
  auto r = RunInChild(
      [] {
        Options o;
        o.max_procs = 4;
        greenline::Run(
            [] {
              for (int wave = 0; wave < 200; ++wave) {
                WaitGroup a, b;
                a.Add(1);
                b.Add(16);
                for (int i = 0; i < 16; ++i) {
                  Go([&] {
                    a.Wait();
                    b.Done();
                  });
                }
                Go([&] { a.Done(); });
                b.Wait();
              }
            },
            o);
        std::fputs("clean\n", stdout);
      },
      120);
  ASSERT_TRUE(r.exited) << r.output;
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("clean"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace greenline
