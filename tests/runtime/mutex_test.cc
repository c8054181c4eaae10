// Tests for greenline/mutex.h: Mutex and RWMutex over real worker threads. Mutual exclusion
// under contention (a plain counter stays exact, also when the holder yields inside), TryLock,
// Go's starvation mode (a waiter overtaken again and again still gets the lock), plain threads
// sharing a mutex with goroutines, the std lock adaptors, the wait reasons a parked goroutine
// shows, Go's fatal errors for misuse, and the deadlock detector seeing goroutines stuck on a lock.
// RWMutex: readers share, writers exclude everyone, a stream of readers cannot starve a writer.
// Mutex and RWMutex are capabilities for clang's lock checking (mutex.h): the tests that lock in
// one lambda and unlock in another, read TryLock's result through an EXPECT, or misuse a mutex on
// purpose opt their lambdas out of it (GL_NO_THREAD_SAFETY_ANALYSIS).
#include "greenline/mutex.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "greenline/goroutine.h"
#include "greenline/runtime.h"
#include "greenline/state.h"
#include "greenline/wait_group.h"
#include "runtime/sched/timer.h"
#include "tests/util/child_process.h"
#include "tests/util/goroutines.h"

namespace greenline {
namespace {

using namespace std::chrono_literals;
using testing::AwaitParked;
using testing::IsFatalError;
using testing::Procs;
using testing::RunRuntimeInChild;

// Starts a goroutine that runs `lock` then `unlock` and Done()s `done` (Add()ed here); returns the
// state counts once it is parked with `reason`.
template <class Lock, class Unlock>
StateCounts GoAndSnapshotWhenParked(WaitReason reason, WaitGroup& done, Lock lock, Unlock unlock) {
  done.Add(1);
  Go([&done, lock, unlock] {
    lock();
    unlock();
    done.Done();
  });
  AwaitParked(reason, 1);
  return ReadStateCounts();
}

TEST(MutexTest, StressManyGoroutinesTwoWorkers) {
  // A plain (non-atomic) counter: any overlap of critical sections loses increments, and TSan
  // sees the race.
  constexpr int kGoroutines = 200, kIncrements = 300;
  int64_t counter = 0;
  greenline::Run(
      [&] {
        Mutex mu;
        WaitGroup wg;
        for (int i = 0; i < kGoroutines; ++i) {
          wg.Add(1);
          Go([&] {
            for (int k = 0; k < kIncrements; ++k) {
              mu.Lock();
              ++counter;
              mu.Unlock();
              if (k % 8 == 0) Yield();  // interleave with the others, on both workers
            }
            wg.Done();
          });
        }
        wg.Wait();
      },
      Procs(2));
  EXPECT_EQ(counter, int64_t{kGoroutines} * kIncrements);
}

TEST(MutexTest, StressHeldAcrossYieldStillExcludes) {
  // The holder yields (and may resume on the other worker) inside the critical section: nobody
  // may enter meanwhile.
  constexpr int kGoroutines = 100, kIterations = 50;
  int64_t counter = 0;
  int inside = 0;
  bool overlapped = false;
  greenline::Run(
      [&] {
        Mutex mu;
        WaitGroup wg;
        for (int i = 0; i < kGoroutines; ++i) {
          wg.Add(1);
          Go([&] {
            for (int k = 0; k < kIterations; ++k) {
              std::lock_guard<Mutex> lock(mu);
              if (inside++ != 0) overlapped = true;
              int64_t before = counter;
              Yield();
              counter = before + 1;
              --inside;
            }
            wg.Done();
          });
        }
        wg.Wait();
      },
      Procs(2));
  EXPECT_FALSE(overlapped);
  EXPECT_EQ(counter, int64_t{kGoroutines} * kIterations);
}

TEST(MutexTest, TryLockFailsWhileHeldAndSucceedsWhenFree) {
  bool while_held = true, when_free = false, other_held = true;
  greenline::Run(
      [&]() GL_NO_THREAD_SAFETY_ANALYSIS {
        Mutex mu;
        EXPECT_TRUE(mu.TryLock());
        while_held = mu.TryLock();
        WaitGroup wg;
        wg.Add(1);
        Go([&] {  // another goroutine, possibly on the other worker, sees it held too
          other_held = mu.TryLock();
          wg.Done();
        });
        wg.Wait();
        mu.Unlock();
        when_free = mu.TryLock();
        mu.Unlock();
      },
      Procs(2));
  EXPECT_FALSE(while_held);
  EXPECT_FALSE(other_held);
  EXPECT_TRUE(when_free);
}

TEST(MutexTest, StarvationModeHandsTheLockToAWaiterThatKeepsLosing) {
  // One worker makes normal mode lose deterministically: the hog unlocks (readying the waiter into
  // runnext) and relocks before the waiter runs; the waiter then runs only while the hog yields
  // with the lock held, finds it locked and parks again. Without starvation mode it would never
  // get the lock. With it, once the waiter has waited 1 ms, the hog's Unlock hands the lock over.
  // The bound on the hog's iterations is generous (normally a few thousand are enough); reaching
  // it means the hand-off never happened.
  constexpr int64_t kMaxIterations = 2'000'000;
  std::atomic<bool> got{false};
  int64_t iterations = 0;
  greenline::Run(
      [&] {
        Mutex mu;
        WaitGroup done;
        done.Add(2);
        Go([&] {
          while (!got.load() && iterations < kMaxIterations) {
            mu.Lock();
            Yield();  // the waiter runs here, and finds the lock held
            mu.Unlock();
            ++iterations;
          }
          done.Done();
        });
        Go([&] {
          Yield();  // let the hog take the lock first
          mu.Lock();
          got = true;
          mu.Unlock();
          done.Done();
        });
        done.Wait();
      },
      Procs(1));
  EXPECT_TRUE(got.load());
  EXPECT_LT(iterations, kMaxIterations);
  EXPECT_GT(iterations, 1);  // it did have to wait for the hog
}

TEST(MutexTest, StressPlainThreadsAndGoroutinesShareAMutex) {
  // Plain threads wait by polling (they cannot park) but are regular waiters in the mutex's word.
  constexpr int kGoroutines = 20, kThreads = 2, kIncrements = 500;
  int64_t counter = 0;
  greenline::Run(
      [&] {
        Mutex mu;
        std::atomic<int> threads_done{0};
        // The detector cannot see plain threads: while one holds the lock every goroutine may be
        // parked on it. A sleeping goroutine keeps the runtime from looking deadlocked.
        WaitGroup keeper_done;
        keeper_done.Add(1);
        Go([&] {
          while (threads_done.load() < kThreads) Sleep(1ms);
          keeper_done.Done();
        });
        std::vector<std::thread> threads;
        for (int t = 0; t < kThreads; ++t) {
          threads.emplace_back([&] {
            for (int k = 0; k < kIncrements; ++k) {
              std::lock_guard<Mutex> lock(mu);
              ++counter;
            }
            threads_done.fetch_add(1);
          });
        }
        WaitGroup wg;
        for (int i = 0; i < kGoroutines; ++i) {
          wg.Add(1);
          Go([&] {
            for (int k = 0; k < kIncrements; ++k) {
              std::lock_guard<Mutex> lock(mu);
              ++counter;
              if (k % 16 == 0) Yield();
            }
            wg.Done();
          });
        }
        wg.Wait();
        keeper_done.Wait();
        for (auto& t : threads) t.join();
      },
      Procs(2));
  EXPECT_EQ(counter, int64_t{kGoroutines + kThreads} * kIncrements);
}

TEST(MutexTest, WorksOnPlainThreadsWithNoRuntime) {
  int64_t counter = 0;
  Mutex mu;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int k = 0; k < 5000; ++k) {
        std::unique_lock<Mutex> lock(mu);
        ++counter;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter, 20000);
}

TEST(MutexTest, ParkedWaiterShowsSyncMutexLockAndCountsAsBlocking) {
  StateCounts seen;
  greenline::Run(
      [&] {
        Mutex mu;
        mu.Lock();
        WaitGroup done;
        seen = GoAndSnapshotWhenParked(
            WaitReason::kSyncMutexLock, done, [&]() GL_NO_THREAD_SAFETY_ANALYSIS { mu.Lock(); },
            [&]() GL_NO_THREAD_SAFETY_ANALYSIS { mu.Unlock(); });
        mu.Unlock();
        done.Wait();
      },
      Procs(2));
  EXPECT_EQ(seen.by_reason[static_cast<int>(WaitReason::kSyncMutexLock)], 1);
  EXPECT_EQ(seen.blocking, 1);  // main is running (it reads the counts)
}

TEST(MutexTest, UnlockOfUnlockedIsFatalLikeGo) {
  auto r = RunRuntimeInChild([]() GL_NO_THREAD_SAFETY_ANALYSIS {
    Mutex mu;
    mu.Lock();
    mu.Unlock();
    mu.Unlock();
  });
  EXPECT_TRUE(IsFatalError(r, "sync: unlock of unlocked mutex"));
}

TEST(MutexTest, GoroutinesStuckOnALockAreADeadlock) {
  // Main holds the lock, a goroutine waits for it, then main locks it again: nothing can ever run.
  auto r = RunRuntimeInChild(
      []() GL_NO_THREAD_SAFETY_ANALYSIS {
        Mutex mu;
        mu.Lock();
        Go([&]() GL_NO_THREAD_SAFETY_ANALYSIS { mu.Lock(); });
        Sleep(10ms);
        mu.Lock();
      },
      Procs(2));
  EXPECT_TRUE(IsFatalError(r, "all goroutines are asleep - deadlock!"));
  EXPECT_NE(r.output.find("goroutine 1 [sync.Mutex.Lock]:"), std::string::npos) << r.output;
}

TEST(RWMutexTest, TwoReadersHoldTheLockAtOnce) {
  bool both_inside = false;
  greenline::Run(
      [&] {
        RWMutex mu;
        std::atomic<int> readers{0};
        std::atomic<bool> seen_two{false};
        WaitGroup wg;
        for (int i = 0; i < 2; ++i) {
          wg.Add(1);
          Go([&] {
            std::shared_lock<RWMutex> lock(mu);
            readers.fetch_add(1);
            // Stay inside until the other reader is inside too (bounded, in case it never is).
            int64_t deadline = internal::Nanotime() + 5'000'000'000;
            while (readers.load() < 2 && !seen_two.load() && internal::Nanotime() < deadline) {
              Yield();
            }
            if (readers.load() == 2) seen_two = true;
            lock.unlock();  // before Done: main may return, and `mu` go, once both are done
            wg.Done();
          });
        }
        wg.Wait();
        both_inside = seen_two.load();
      },
      Procs(2));
  EXPECT_TRUE(both_inside);
}

TEST(RWMutexTest, StressWriterExcludesReadersAndWriters) {
  constexpr int kWriters = 20, kReaders = 60, kIterations = 100;
  int64_t value = 0;  // plain: written by writers, read by readers
  std::atomic<int> readers_in{0}, writers_in{0};
  std::atomic<bool> violated{false};
  greenline::Run(
      [&] {
        RWMutex mu;
        WaitGroup wg;
        for (int i = 0; i < kWriters + kReaders; ++i) {
          wg.Add(1);
          bool writer = i % 4 == 0 && i / 4 < kWriters;
          Go([&, writer] {
            for (int k = 0; k < kIterations; ++k) {
              if (writer) {
                std::lock_guard<RWMutex> lock(mu);
                if (writers_in.fetch_add(1) != 0 || readers_in.load() != 0) violated = true;
                int64_t v = value;
                if (k % 4 == 0) Yield();
                value = v + 1;
                writers_in.fetch_sub(1);
              } else {
                std::shared_lock<RWMutex> lock(mu);
                readers_in.fetch_add(1);
                if (writers_in.load() != 0) violated = true;
                int64_t v = value;
                if (k % 4 == 0) Yield();
                if (value != v) violated = true;  // a writer got in while we read
                readers_in.fetch_sub(1);
              }
            }
            wg.Done();
          });
        }
        wg.Wait();
      },
      Procs(2));
  EXPECT_FALSE(violated.load());
  EXPECT_EQ(value, int64_t{kWriters} * kIterations);
}

TEST(RWMutexTest, WriterIsNotStarvedByAStreamOfReaders) {
  // Readers overlap constantly (each holds the read lock across a Yield, so some reader is always
  // inside): a lock that let new readers in past a waiting writer would never let it in, and the
  // readers would run until the 5 s deadline. Go's lets it in as soon as the readers already inside
  // leave. (A deadline, not a round count: an OS thread descheduled for a few ms on a busy machine
  // must not make the test fail.)
  constexpr int kReaders = 8;
  const int64_t deadline = internal::Nanotime() + 5'000'000'000;
  std::atomic<bool> writer_done{false};
  std::atomic<int64_t> rounds{0};
  bool written_before_deadline = false;
  int64_t rounds_when_written = -1;
  greenline::Run(
      [&] {
        RWMutex mu;
        WaitGroup wg;
        for (int i = 0; i < kReaders; ++i) {
          wg.Add(1);
          Go([&] {
            while (!writer_done.load() && internal::Nanotime() < deadline) {
              mu.RLock();
              rounds.fetch_add(1);
              Yield();
              mu.RUnlock();
            }
            wg.Done();
          });
        }
        while (rounds.load() < 100) Yield();  // the stream is flowing
        mu.Lock();
        written_before_deadline = internal::Nanotime() < deadline;
        rounds_when_written = rounds.load();
        writer_done = true;
        mu.Unlock();
        wg.Wait();
      },
      Procs(2));
  EXPECT_TRUE(written_before_deadline);
  EXPECT_GE(rounds_when_written, 100);
}

TEST(RWMutexTest, TryLockAndTryRLock) {
  greenline::Run(
      [&]() GL_NO_THREAD_SAFETY_ANALYSIS {
        RWMutex mu;
        EXPECT_TRUE(mu.TryRLock());
        EXPECT_TRUE(mu.TryRLock());  // readers share
        EXPECT_FALSE(mu.TryLock());  // a writer does not get in past readers
        mu.RUnlock();
        mu.RUnlock();
        EXPECT_TRUE(mu.TryLock());
        EXPECT_FALSE(mu.TryRLock());
        EXPECT_FALSE(mu.TryLock());
        mu.Unlock();
        EXPECT_TRUE(mu.TryRLock());
        mu.RUnlock();
      },
      Procs(2));
}

TEST(RWMutexTest, ParkedReaderAndWriterShowTheirWaitReasons) {
  StateCounts writer_waiting, reader_waiting;
  greenline::Run(
      [&] {
        RWMutex mu;
        mu.RLock();
        WaitGroup done;
        // A writer waits for the reader to leave, then a reader arrives behind the writer.
        writer_waiting = GoAndSnapshotWhenParked(
            WaitReason::kSyncRWMutexLock, done, [&]() GL_NO_THREAD_SAFETY_ANALYSIS { mu.Lock(); },
            [&]() GL_NO_THREAD_SAFETY_ANALYSIS { mu.Unlock(); });
        reader_waiting = GoAndSnapshotWhenParked(
            WaitReason::kSyncRWMutexRLock, done, [&]() GL_NO_THREAD_SAFETY_ANALYSIS { mu.RLock(); },
            [&]() GL_NO_THREAD_SAFETY_ANALYSIS { mu.RUnlock(); });
        mu.RUnlock();
        done.Wait();
      },
      Procs(2));
  EXPECT_EQ(writer_waiting.by_reason[static_cast<int>(WaitReason::kSyncRWMutexLock)], 1);
  EXPECT_EQ(reader_waiting.by_reason[static_cast<int>(WaitReason::kSyncRWMutexRLock)], 1);
  EXPECT_EQ(reader_waiting.blocking, 2);
}

TEST(RWMutexTest, RUnlockOfUnlockedIsFatalLikeGo) {
  auto r = RunRuntimeInChild([]() GL_NO_THREAD_SAFETY_ANALYSIS {
    RWMutex mu;
    mu.RUnlock();
  });
  EXPECT_TRUE(IsFatalError(r, "sync: RUnlock of unlocked RWMutex"));
}

TEST(RWMutexTest, UnlockOfUnlockedIsFatalLikeGo) {
  auto r = RunRuntimeInChild([]() GL_NO_THREAD_SAFETY_ANALYSIS {
    RWMutex mu;
    mu.RLock();
    mu.Unlock();  // read-locked, not write-locked
  });
  EXPECT_TRUE(IsFatalError(r, "sync: Unlock of unlocked RWMutex"));
}

}  // namespace
}  // namespace greenline
