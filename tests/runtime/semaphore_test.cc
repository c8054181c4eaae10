// Tests for greenline/semaphore.h: the number of units held never exceeds the capacity under
// contention on two workers; waiters are served FIFO, so a large request at the head holds back
// smaller ones; TryAcquire never overtakes the queue; a plain thread keeps its place; a parked
// Acquire shows "semacquire"; releasing more than held and asking for more than the capacity are
// fatal.
#include "greenline/semaphore.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "greenline/goroutine.h"
#include "greenline/mutex.h"
#include "greenline/runtime.h"
#include "greenline/state.h"
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

TEST(SemaphoreTest, StressHoldersNeverExceedTheCapacity) {
  constexpr int64_t kCapacity = 5;
  constexpr int kGoroutines = 300, kRounds = 20;
  std::atomic<int64_t> held{0}, max_held{0};
  greenline::Run(
      [&] {
        Semaphore sem(kCapacity);
        WaitGroup wg;
        for (int i = 0; i < kGoroutines; ++i) {
          wg.Add(1);
          Go([&, i] {
            for (int k = 0; k < kRounds; ++k) {
              int64_t n = 1 + (i + k) % 3;
              sem.Acquire(n);
              int64_t now = held.fetch_add(n) + n;
              int64_t seen = max_held.load();
              while (now > seen && !max_held.compare_exchange_weak(seen, now)) {
              }
              Yield();
              held.fetch_sub(n);
              sem.Release(n);
            }
            wg.Done();
          });
        }
        wg.Wait();
      },
      Procs(2));
  EXPECT_LE(max_held.load(), kCapacity);
  EXPECT_GE(max_held.load(), 2);  // it did run concurrently
  EXPECT_EQ(held.load(), 0);
}

TEST(SemaphoreTest, ABigRequestAtTheHeadHoldsBackSmallerOnes) {
  std::vector<std::string> order;  // guarded by mu
  bool small_try_while_big_waits = true;
  greenline::Run(
      [&] {
        Mutex mu;
        Semaphore sem(10);
        sem.Acquire(5);  // 5 of 10 free
        WaitGroup done;
        done.Add(2);
        Go([&] {
          sem.Acquire(10);  // must wait for all 10
          {
            std::lock_guard<Mutex> lock(mu);
            order.push_back("big");
          }
          Sleep(5ms);
          sem.Release(10);
          done.Done();
        });
        AwaitParked(WaitReason::kSemacquire, 1);
        Go([&] {
          sem.Acquire(1);  // 5 are free, but the big request is ahead
          {
            std::lock_guard<Mutex> lock(mu);
            order.push_back("small");
          }
          sem.Release(1);
          done.Done();
        });
        AwaitParked(WaitReason::kSemacquire, 2);
        small_try_while_big_waits = sem.TryAcquire(1);  // no overtaking the queue either
        sem.Release(5);
        done.Wait();
      },
      Procs(2));
  EXPECT_FALSE(small_try_while_big_waits);
  EXPECT_EQ(order, (std::vector<std::string>{"big", "small"}));
}

TEST(SemaphoreTest, TryAcquireTakesFreeUnitsOnly) {
  Semaphore sem(3);
  EXPECT_EQ(sem.capacity(), 3);
  EXPECT_TRUE(sem.TryAcquire(2));
  EXPECT_FALSE(sem.TryAcquire(2));
  EXPECT_TRUE(sem.TryAcquire(1));
  EXPECT_FALSE(sem.TryAcquire(1));
  sem.Release(3);
  EXPECT_TRUE(sem.TryAcquire(3));
  sem.Release(3);
}

TEST(SemaphoreTest, APlainThreadKeepsItsPlaceInTheQueue) {
  std::vector<std::string> order;  // guarded by mu
  greenline::Run(
      [&] {
        Mutex mu;
        Semaphore sem(1);
        sem.Acquire(1);
        std::atomic<bool> thread_done{false};
        std::thread t([&] {
          sem.Acquire(1);  // queues first, then polls its grant
          {
            std::lock_guard<Mutex> lock(mu);
            order.push_back("thread");
          }
          sem.Release(1);
          thread_done = true;
        });
        Sleep(20ms);  // the thread is queued
        WaitGroup done;
        done.Add(1);
        Go([&] {
          sem.Acquire(1);  // behind the thread
          {
            std::lock_guard<Mutex> lock(mu);
            order.push_back("goroutine");
          }
          sem.Release(1);
          done.Done();
        });
        AwaitParked(WaitReason::kSemacquire, 1);
        sem.Release(1);
        // The detector cannot see the thread: sleep (running-class) rather than park meanwhile.
        while (!thread_done.load()) Sleep(1ms);
        done.Wait();
        t.join();
      },
      Procs(2));
  EXPECT_EQ(order, (std::vector<std::string>{"thread", "goroutine"}));
}

TEST(SemaphoreTest, ReleasingMoreThanHeldIsFatal) {
  auto r = RunRuntimeInChild([] {
    Semaphore sem(4);
    sem.Acquire(2);
    sem.Release(3);
  });
  EXPECT_TRUE(IsFatalError(r, "semaphore: released more than held"));
}

TEST(SemaphoreTest, AcquiringMoreThanTheCapacityIsFatal) {
  auto r = RunRuntimeInChild([] {
    Semaphore sem(4);
    sem.Acquire(5);
  });
  EXPECT_TRUE(IsFatalError(r, "semaphore: acquire of 5 exceeds the capacity 4"));
}

}  // namespace
}  // namespace greenline
