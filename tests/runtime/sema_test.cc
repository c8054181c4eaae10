// Tests for greenline/internal/sema.h, the runtime semaphore under Mutex and RWMutex: tokens
// are counted, waiters queue FIFO (lifo ones at the head), a normal release lets a running
// goroutine take the token before the woken waiter (which then waits again, as in Go), a handoff
// release gives the token to the first waiter and runs it at once, plain threads poll, and no
// wake-up is lost when goroutines on two workers hand tokens back and forth.
#include "greenline/internal/sema.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "greenline/goroutine.h"
#include "greenline/runtime.h"
#include "greenline/wait_group.h"
#include "tests/util/child_process.h"

namespace greenline {
namespace {

using internal::Sema;
using namespace std::chrono_literals;
using testing::Procs;
using testing::RunInChild;

// Yields until `sema` has `n` waiters (bounded).
void AwaitWaiters(const Sema& sema, uint32_t n) {
  for (int i = 0; i < 100000 && sema.waiters() < n; ++i) Yield();
}

// Starts a goroutine that acquires a token from `sema`, then sets `woke` and Done()s `done`
// (Add()ed here); returns once it is parked.
void GoAcquireAndPark(Sema& sema, std::atomic<bool>& woke, WaitGroup& done) {
  done.Add(1);
  Go([&] {
    sema.Acquire(WaitReason::kSemacquire);
    woke = true;
    done.Done();
  });
  AwaitWaiters(sema, 1);
}

TEST(SemaTest, TokensAreCounted) {
  Sema sema(2);
  EXPECT_TRUE(sema.TryAcquire());
  EXPECT_TRUE(sema.TryAcquire());
  EXPECT_FALSE(sema.TryAcquire());
  sema.Release();
  EXPECT_TRUE(sema.TryAcquire());
  EXPECT_EQ(sema.waiters(), 0u);
}

TEST(SemaTest, WaitersAreServedFifoAndLifoOnesFirst) {
  // One worker: nothing runs in parallel, so the order of wake-ups is the queue's order.
  std::vector<int> order;
  greenline::Run(
      [&] {
        Sema sema;
        WaitGroup done;
        for (int i = 0; i < 3; ++i) {
          done.Add(1);
          Go([&, i] {
            sema.Acquire(WaitReason::kSemacquire, /*lifo=*/false);
            order.push_back(i);
            done.Done();
          });
          AwaitWaiters(sema, i + 1);
        }
        done.Add(1);
        Go([&] {
          sema.Acquire(WaitReason::kSemacquire, /*lifo=*/true);  // jumps the queue
          order.push_back(3);
          done.Done();
        });
        AwaitWaiters(sema, 4);
        for (int i = 0; i < 4; ++i) {
          sema.Release();
          Yield();  // the woken waiter runs and takes its token
        }
        done.Wait();
      },
      Procs(1));
  EXPECT_EQ(order, (std::vector<int>{3, 0, 1, 2}));
}

TEST(SemaTest, ANormalReleaseCanBeOvertakenAndTheWaiterWaitsAgain) {
  bool barged = false;
  uint32_t waiting_again = 0;
  std::atomic<bool> woke{false};
  greenline::Run(
      [&] {
        Sema sema;
        WaitGroup done;
        GoAcquireAndPark(sema, woke, done);
        sema.Release();  // readies the waiter, but we are still running
        barged = sema.TryAcquire();
        Yield();  // the waiter runs, finds no token, parks again
        waiting_again = sema.waiters();
        sema.Release();
        done.Wait();
      },
      Procs(1));
  EXPECT_TRUE(barged);
  EXPECT_EQ(waiting_again, 1u);
  EXPECT_TRUE(woke.load());
}

TEST(SemaTest, HandoffGivesTheTokenToTheWaiterAndRunsItAtOnce) {
  bool ran_before_release_returned = false;
  bool token_left = true;
  std::atomic<bool> woke{false};
  greenline::Run(
      [&] {
        Sema sema;
        WaitGroup done;
        GoAcquireAndPark(sema, woke, done);
        sema.Release(/*handoff=*/true);  // yields to the waiter, which owns the token
        ran_before_release_returned = woke.load();
        token_left = sema.TryAcquire();
        done.Wait();
      },
      Procs(1));
  EXPECT_TRUE(ran_before_release_returned);
  EXPECT_FALSE(token_left);
}

TEST(SemaTest, PlainThreadAcquirePollsForAToken) {
  Sema sema;
  std::atomic<bool> acquired{false};
  std::thread t([&] {
    sema.Acquire(WaitReason::kSemacquire);
    acquired = true;
  });
  std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(acquired.load());
  EXPECT_EQ(sema.waiters(), 0u);  // plain threads never join the list
  sema.Release();
  t.join();
  EXPECT_TRUE(acquired.load());
}

TEST(SemaTest, StressPingPongAcrossWorkersLosesNoWakeup) {
  // Pairs of goroutines hand a token back and forth through two semaphores, on two workers, with
  // both normal and handoff releases. A lost wake-up leaves a pair stuck forever: the deadlock
  // detector ends the child with exit 2 (or it times out).
  auto r = RunInChild(
      [] {
        greenline::Run(
            [] {
              constexpr int kPairs = 64, kRounds = 300;
              std::vector<std::unique_ptr<Sema>> semas;
              WaitGroup wg;
              for (int p = 0; p < kPairs; ++p) {
                wg.Add(2);
                Sema* ping = semas.emplace_back(std::make_unique<Sema>()).get();
                Sema* pong = semas.emplace_back(std::make_unique<Sema>()).get();
                bool handoff = p % 2 == 0;
                Go([=, &wg] {
                  for (int k = 0; k < kRounds; ++k) {
                    ping->Release(handoff);
                    pong->Acquire(WaitReason::kSemacquire, k % 3 == 0);
                  }
                  wg.Done();
                });
                Go([=, &wg] {
                  for (int k = 0; k < kRounds; ++k) {
                    ping->Acquire(WaitReason::kSemacquire, false);
                    pong->Release(handoff);
                  }
                  wg.Done();
                });
              }
              wg.Wait();
            },
            Procs(2));
        std::fputs("all pairs done\n", stdout);
      },
      60);
  ASSERT_TRUE(r.exited) << "stalled (a lost wake-up)\n" << r.output;
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("all pairs done"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace greenline
