// Tests for greenline/cond.h: Signal wakes exactly one waiter, the one that waited longest;
// Broadcast wakes all; a bounded producer/consumer queue over two Conds moves every item exactly
// once across two workers; an RWMutex's write side works as the Cond's lock; a plain thread may
// signal; and the deadlock detector tells a Cond nobody can signal from one a sleeper will.
#include "greenline/cond.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "greenline/goroutine.h"
#include "greenline/mutex.h"
#include "greenline/runtime.h"
#include "greenline/wait_group.h"
#include "tests/util/child_process.h"

namespace greenline {
namespace {

using namespace std::chrono_literals;
using testing::IsFatalError;
using testing::Procs;
using testing::RunRuntimeInChild;

// Sleeps until pred() holds under mu (bounded: about 5 s).
template <class Pred>
void AwaitUnder(Mutex& mu, Pred pred) {
  for (int i = 0; i < 5000; ++i) {
    {
      std::lock_guard<Mutex> lock(mu);
      if (pred()) return;
    }
    Sleep(1ms);
  }
}

TEST(CondTest, SignalWakesOneBroadcastWakesAll) {
  constexpr int kWaiters = 5;
  int woke_after_signal = -1, woke_after_broadcast = -1;
  greenline::Run(
      [&] {
        Mutex mu;
        Cond cond(mu);
        int waiting = 0, woke = 0;  // guarded by mu
        WaitGroup done;
        for (int i = 0; i < kWaiters; ++i) {
          done.Add(1);
          Go([&] {
            std::unique_lock<Mutex> lock(mu);
            ++waiting;
            cond.Wait();  // no predicate loop: Go's Cond has no spurious wake-ups
            ++woke;
            lock.unlock();  // before Done: once all are done, main returns and `mu` is gone
            done.Done();
          });
        }
        AwaitUnder(mu, [&] { return waiting == kWaiters; });
        cond.Signal();
        AwaitUnder(mu, [&] { return woke >= 1; });
        Sleep(20ms);  // time for a wrongly woken second waiter to show
        {
          std::lock_guard<Mutex> lock(mu);
          woke_after_signal = woke;
        }
        cond.Broadcast();
        done.Wait();
        woke_after_broadcast = woke;
      },
      Procs(2));
  EXPECT_EQ(woke_after_signal, 1);
  EXPECT_EQ(woke_after_broadcast, kWaiters);
}

TEST(CondTest, SignalWakesTheLongestWaiterFirst) {
  constexpr int kWaiters = 4;
  std::vector<int> order;
  greenline::Run(
      [&] {
        Mutex mu;
        Cond cond(mu);
        int waiting = 0;  // guarded by mu, as is `order`
        WaitGroup done;
        for (int i = 0; i < kWaiters; ++i) {
          done.Add(1);
          Go([&, i] {
            std::unique_lock<Mutex> lock(mu);
            ++waiting;
            cond.Wait();
            order.push_back(i);
            lock.unlock();
            done.Done();
          });
          AwaitUnder(mu, [&] { return waiting == i + 1; });  // they wait in order 0, 1, 2, ...
        }
        for (int i = 0; i < kWaiters; ++i) {
          cond.Signal();
          AwaitUnder(mu, [&] { return static_cast<int>(order.size()) == i + 1; });
        }
        done.Wait();
      },
      Procs(2));
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
}

TEST(CondTest, StressProducerConsumerQueue) {
  constexpr int kProducers = 4, kConsumers = 4, kItems = 1000, kCapacity = 8;
  int64_t consumed_sum = 0, consumed = 0;
  greenline::Run(
      [&] {
        Mutex mu;
        Cond not_empty(mu), not_full(mu);
        std::deque<int> queue;  // guarded by mu
        bool closed = false;    // guarded by mu
        WaitGroup producers, consumers;
        for (int p = 0; p < kProducers; ++p) {
          producers.Add(1);
          Go([&, p] {
            for (int k = 0; k < kItems; ++k) {
              std::unique_lock<Mutex> lock(mu);
              while (queue.size() >= kCapacity) not_full.Wait();
              queue.push_back(p * kItems + k);
              not_empty.Signal();
            }
            producers.Done();
          });
        }
        for (int c = 0; c < kConsumers; ++c) {
          consumers.Add(1);
          Go([&] {
            for (;;) {
              std::unique_lock<Mutex> lock(mu);
              while (queue.empty() && !closed) not_empty.Wait();
              if (queue.empty()) break;  // closed and drained
              consumed_sum += queue.front();
              ++consumed;
              queue.pop_front();
              not_full.Signal();
            }
            consumers.Done();
          });
        }
        producers.Wait();
        {
          std::lock_guard<Mutex> lock(mu);
          closed = true;
        }
        not_empty.Broadcast();
        consumers.Wait();
      },
      Procs(2));
  constexpr int64_t kTotal = int64_t{kProducers} * kItems;
  EXPECT_EQ(consumed, kTotal);
  EXPECT_EQ(consumed_sum, kTotal * (kTotal - 1) / 2);
}

TEST(CondTest, RWMutexWriteSideAsTheLock) {
  bool woke = false;
  greenline::Run(
      [&] {
        RWMutex mu;
        Cond cond(mu);
        bool ready = false;  // guarded by mu
        WaitGroup done;
        done.Add(1);
        Go([&] {
          std::unique_lock<RWMutex> lock(mu);
          while (!ready) cond.Wait();
          woke = true;
          lock.unlock();
          done.Done();
        });
        Sleep(5ms);
        {
          std::lock_guard<RWMutex> lock(mu);
          ready = true;
        }
        cond.Signal();
        done.Wait();
      },
      Procs(2));
  EXPECT_TRUE(woke);
}

TEST(CondTest, APlainThreadMaySignal) {
  bool woke = false;
  greenline::Run(
      [&] {
        Mutex mu;
        Cond cond(mu);
        bool ready = false;  // guarded by mu
        std::thread t([&] {
          std::this_thread::sleep_for(20ms);
          {
            std::lock_guard<Mutex> lock(mu);
            ready = true;
          }
          cond.Signal();
        });
        Go([&] { Sleep(200ms); });  // the detector cannot see the thread: keep a sleeper around
        {
          std::unique_lock<Mutex> lock(mu);
          while (!ready) cond.Wait();
          woke = true;
        }
        t.join();
      },
      Procs(2));
  EXPECT_TRUE(woke);
}

TEST(CondTest, WaiterWhileASleeperWillSignalIsNotADeadlock) {
  auto r = RunRuntimeInChild(
      [] {
        Mutex mu;
        Cond cond(mu);
        bool ready = false;  // guarded by mu
        Go([&] {
          Sleep(200ms);  // asleep counts as running: the wait below will end
          std::lock_guard<Mutex> lock(mu);
          ready = true;
          cond.Signal();
        });
        std::unique_lock<Mutex> lock(mu);
        while (!ready) cond.Wait();
      },
      Procs(2));
  ASSERT_TRUE(r.exited) << r.output;
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST(CondTest, WaitNobodyCanSignalIsADeadlock) {
  auto r = RunRuntimeInChild(
      [] {
        Mutex mu;
        Cond cond(mu);
        std::unique_lock<Mutex> lock(mu);
        cond.Wait();
      },
      Procs(2));
  EXPECT_TRUE(IsFatalError(r, "all goroutines are asleep - deadlock!"));
  EXPECT_NE(r.output.find("goroutine 1 [sync.Cond.Wait]:"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace greenline
