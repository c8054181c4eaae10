// Tests for greenline/goroutine.h: spawning (ids, callables of every shape), Yield's fairness,
// runnext not starving the run queue, Sleep's timing (zero and negative durations returning
// without parking, on a goroutine or off the runtime), Blocking keeping its worker free, work
// spreading across workers, NumGoroutine, and a million goroutines that sleep and exit.
#include "greenline/goroutine.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <exception>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "greenline/runtime.h"
#include "greenline/wait_group.h"
#include "runtime/fiber/stack.h"
#include "runtime/sched/internal/sched.h"
#include "tests/util/child_process.h"

namespace greenline {
namespace {

using testing::Procs;
using namespace std::chrono_literals;

TEST(GoroutineTest, GoRunsTheCallableWithUniqueIncreasingIds) {
  std::vector<uint64_t> ids(100);
  std::vector<uint64_t> returned(100);
  greenline::Run([&] {
    WaitGroup wg;
    for (int i = 0; i < 100; ++i) {
      wg.Add(1);
      returned[i] = Go([&, i] {
        ids[i] = GoroutineId();
        wg.Done();
      });
    }
    wg.Wait();
  });
  std::set<uint64_t> unique(ids.begin(), ids.end());
  EXPECT_EQ(unique.size(), 100u);
  EXPECT_EQ(ids, returned);
  EXPECT_EQ(unique.count(1), 0u);  // 1 is main
}

TEST(GoroutineTest, MoveOnlyAndLargeCallablesWork) {
  int got_small = 0, got_big = 0;
  greenline::Run([&] {
    WaitGroup wg;
    wg.Add(2);
    auto p = std::make_unique<int>(42);
    Go([&, p = std::move(p)] {
      got_small = *p;
      wg.Done();
    });
    std::array<int, 4096> big{};  // 16 KiB of captures: boxed on the heap
    big[4095] = 7;
    Go([&, big] {
      got_big = big[4095];
      wg.Done();
    });
    wg.Wait();
  });
  EXPECT_EQ(got_small, 42);
  EXPECT_EQ(got_big, 7);
}

TEST(GoroutineTest, CallablesOfEveryLayoutKeepTheirState) {
  // Up to 64 bytes (16-aligned) a callable waits in the G; over-aligned or up to 1 KiB it is built
  // atop a stack bound at spawn; beyond, it is boxed. Each must arrive intact.
  struct alignas(32) OverAligned {
    int v;
  };
  std::array<int, 16> small{};  // 64 bytes: exactly the G's room
  small.fill(3);
  std::array<int, 200> medium{};  // 800 bytes: atop the stack
  medium.fill(5);
  int64_t sum_small = 0, sum_medium = 0, over = 0;
  greenline::Run([&] {
    WaitGroup wg;
    wg.Add(3);
    Go([&wg, &sum_small, small]() mutable {
      for (int v : small) sum_small += v;
      wg.Done();
    });
    Go([&wg, &sum_medium, medium] {
      for (int v : medium) sum_medium += v;
      wg.Done();
    });
    OverAligned a{9};
    Go([&wg, &over, a] {
      over = reinterpret_cast<uintptr_t>(&a) % alignof(OverAligned) == 0 ? a.v : -1;
      wg.Done();
    });
    wg.Wait();
  });
  EXPECT_EQ(sum_small, 16 * 3);
  EXPECT_EQ(sum_medium, 200 * 5);
  EXPECT_EQ(over, 9);
}

TEST(GoroutineTest, UnstartedGoroutinesHoldNoStack) {
  // A goroutine gets its stack when it first runs, so a burst of spawns costs Gs, not stacks (and
  // the stacks used are the few that exiting goroutines hand on). A callable too big for the G
  // needs its stack at spawn: the same burst then holds one stack per goroutine.
  constexpr int kN = 20000;
  size_t small_burst = 0, big_burst = 0;
  greenline::Run(
      [&] {
        StackPool* pool = internal::g_sched.load()->stacks.get();
        size_t before = pool->stacks_handed_out();
        WaitGroup wg;
        wg.Add(kN);
        for (int i = 0; i < kN; ++i) Go([&wg] { wg.Done(); });
        small_burst = pool->stacks_handed_out() - before;
        wg.Wait();
        std::array<char, 256> pad{};
        before = pool->stacks_handed_out();
        wg.Add(kN);
        for (int i = 0; i < kN; ++i) {
          Go([&wg, pad] {
            volatile char first = pad[0];  // the capture is used, so it is kept
            (void)first;
            wg.Done();
          });
        }
        big_burst = pool->stacks_handed_out() - before;
        wg.Wait();
      },
      Procs(1));
  EXPECT_LT(small_burst, 100u);
  EXPECT_GE(big_burst, static_cast<size_t>(kN) - 2 * internal::kMaxLocalStacks);
}

TEST(GoroutineTest, YieldingLoopDoesNotStarveOthers) {
  std::atomic<int> done{0};
  greenline::Run(
      [&] {
        std::atomic<bool> stop{false};
        WaitGroup wg;
        wg.Add(1);
        Go([&] {
          while (!stop) Yield();  // a goroutine that yields forever
          wg.Done();
        });
        WaitGroup others;
        for (int i = 0; i < 100; ++i) {
          others.Add(1);
          Go([&] {
            for (int k = 0; k < 100; ++k) Yield();
            done.fetch_add(1);
            others.Done();
          });
        }
        others.Wait();
        stop = true;
        wg.Wait();
      },
      Procs(1));
  EXPECT_EQ(done.load(), 100);
}

TEST(GoroutineTest, RunnextChainDoesNotStarveTheQueue) {
  // Each link of the chain spawns the next (which goes to runnext, as in Go) and exits, so the
  // worker could run the chain forever from runnext. The goroutine waiting in the queue must get
  // its turn within a bounded number of links, not after the whole chain.
  constexpr int kLinks = 20000;
  std::atomic<int> link{0};
  std::atomic<int> victim_ran_at{-1};
  greenline::Run(
      [&] {
        WaitGroup wg;
        wg.Add(2);
        Go([&] {
          victim_ran_at = link.load();
          wg.Done();
        });
        struct Chain {
          static void Next(std::atomic<int>* link, WaitGroup* wg) {
            if (link->fetch_add(1) + 1 == kLinks) {
              wg->Done();
              return;
            }
            Go([link, wg] { Next(link, wg); });
          }
        };
        Go([&] { Chain::Next(&link, &wg); });  // kicks the victim from runnext to the queue
        wg.Wait();
      },
      Procs(1));
  ASSERT_GE(victim_ran_at.load(), 0);
  EXPECT_LT(victim_ran_at.load(), 100) << "the queued goroutine waited for most of the chain";
}

TEST(GoroutineTest, SleepZeroOrNegativeReturnsWithoutParking) {
  // One worker, and a goroutine runnable behind this one: a park or a yield would run it before
  // Sleep returned, and would count a switch. Yield is the control that shows the probe works.
  bool probe_ran = false;  // outside Run: the probe may outlive main if Yield were broken
  bool ran_after_go = true, ran_after_sleeps = true, ran_after_yield = false;
  uint64_t switches_in_sleeps = ~uint64_t{0};
  greenline::Run(
      [&] {
        Go([&] { probe_ran = true; });
        ran_after_go = probe_ran;
        uint64_t before = TotalSwitches();
        Sleep(0ns);
        Sleep(-5ms);
        Sleep(std::chrono::nanoseconds::min());
        switches_in_sleeps = TotalSwitches() - before;
        ran_after_sleeps = probe_ran;
        Yield();
        ran_after_yield = probe_ran;
      },
      Procs(1));
  EXPECT_FALSE(ran_after_go) << "Go() switched to the new goroutine: the probe shows nothing";
  EXPECT_FALSE(ran_after_sleeps) << "a zero or negative Sleep let another goroutine run";
  EXPECT_EQ(switches_in_sleeps, 0u) << "a zero or negative Sleep went through the scheduler";
  EXPECT_TRUE(ran_after_yield) << "Yield did not run the probe: the probe shows nothing";
}

TEST(GoroutineTest, SleepOffRuntimeSleepsTheThreadOrReturnsAtOnce) {
  // Not on a goroutine: an ordinary thread sleep, at least as long as asked.
  auto start = std::chrono::steady_clock::now();
  Sleep(2ms);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 2ms);
  // Zero and negative return at once. The bound is generous (a no-op against half the magnitude)
  // so a loaded machine cannot trip it; a Sleep that slept the magnitude takes 2 s.
  start = std::chrono::steady_clock::now();
  Sleep(0ns);
  Sleep(-2s);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

TEST(GoroutineTest, TimingSleepWakesOnTimeNeverEarly) {
  std::vector<std::chrono::nanoseconds> late;
  greenline::Run([&] {
    for (auto d : {1ms, 5ms, 20ms, 50ms}) {
      auto start = std::chrono::steady_clock::now();
      Sleep(d);
      auto took = std::chrono::steady_clock::now() - start;
      ASSERT_GE(took, d) << "woke early";
      late.push_back(took - d);
    }
  });
  for (auto l : late) EXPECT_LT(l, 30ms) << "woke " << l.count() << " ns late";
}

TEST(GoroutineTest, ManySleepersWakeInOrderOfDeadline) {
  std::mutex mu;
  std::vector<int> order;
  greenline::Run(
      [&] {
        WaitGroup wg;
        for (int i = 9; i >= 0; --i) {
          wg.Add(1);
          Go([&, i] {
            Sleep(std::chrono::milliseconds(5 + 15 * i));
            std::lock_guard<std::mutex> lock(mu);
            order.push_back(i);
            wg.Done();
          });
        }
        wg.Wait();
      },
      Procs(1));
  std::vector<int> expected{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  EXPECT_EQ(order, expected);
}

TEST(GoroutineTest, BlockingCallKeepsTheWorkerFree) {
  std::atomic<int> ticks_during_call{0};
  int result = 0;
  greenline::Run(
      [&] {
        std::atomic<bool> in_call{false};
        WaitGroup wg;
        wg.Add(1);
        Go([&] {
          // On the only worker: it can tick only if the blocking call is not holding that worker.
          while (!in_call) Yield();
          while (in_call) {
            ticks_during_call.fetch_add(1);
            Sleep(1ms);
          }
          wg.Done();
        });
        result = Blocking([&] {
          in_call = true;
          usleep(200'000);
          in_call = false;
          return 42;
        });
        wg.Wait();
      },
      Procs(1));
  EXPECT_EQ(result, 42);
  EXPECT_GT(ticks_during_call.load(), 10);
}

TEST(GoroutineTest, BlockingCallsDoNotQueueBehindEachOther) {
  // Two blocking calls in flight at once get two pool threads, even right after the pool had an
  // idle thread: a read(2) waiting for a write(2) in the other call must not wait forever.
  int rounds_done = 0;
  greenline::Run(
      [&] {
        Blocking([] {});  // leaves one idle pool thread behind
        for (int round = 0; round < 50; ++round) {
          int fds[2];
          ASSERT_EQ(pipe(fds), 0);
          WaitGroup wg;
          wg.Add(2);
          char got = 0;
          Go([&] {
            Blocking([&] { ASSERT_EQ(read(fds[0], &got, 1), 1); });
            wg.Done();
          });
          Go([&] {
            Blocking([&] { ASSERT_EQ(write(fds[1], "x", 1), 1); });
            wg.Done();
          });
          wg.Wait();
          close(fds[0]);
          close(fds[1]);
          ASSERT_EQ(got, 'x');
          ++rounds_done;
        }
      },
      Procs(2));
  EXPECT_EQ(rounds_done, 50);
}

TEST(GoroutineTest, BlockingRethrowsAndWorksOutsideGoroutines) {
  EXPECT_EQ(Blocking([] { return 5; }), 5);
  bool caught = false;
  greenline::Run([&] {
    try {
      Blocking([]() -> int { throw std::runtime_error("disk on fire"); });
    } catch (const std::runtime_error& e) {
      caught = std::string(e.what()) == "disk on fire";
    }
  });
  EXPECT_TRUE(caught);
}

TEST(GoroutineTest, NumGoroutineCountsLiveUserGoroutines) {
  int64_t with_sleepers = 0, after = 0;
  greenline::Run([&] {
    WaitGroup started, release;
    release.Add(1);
    for (int i = 0; i < 10; ++i) {
      started.Add(1);
      Go([&] {
        started.Done();
        release.Wait();
      });
    }
    started.Wait();
    with_sleepers = NumGoroutine();
    release.Done();
    while (NumGoroutine() > 1) Sleep(1ms);
    after = NumGoroutine();
  });
  EXPECT_EQ(with_sleepers, 11);
  EXPECT_EQ(after, 1);
  EXPECT_EQ(NumGoroutine(), 0);
}

TEST(GoroutineStressTest, WorkSpreadsAcrossWorkers) {
  // Goroutines all spawned on one worker's queue must end up running on both: idle workers steal.
  std::mutex mu;
  std::set<pid_t> threads;
  greenline::Run(
      [&] {
        WaitGroup wg;
        for (int i = 0; i < 64; ++i) {
          wg.Add(1);
          Go([&] {
            for (int k = 0; k < 50; ++k) {
              auto end = std::chrono::steady_clock::now() + 20us;
              while (std::chrono::steady_clock::now() < end) {
              }
              {
                std::lock_guard<std::mutex> lock(mu);
                threads.insert(gettid());
              }
              Yield();
            }
            wg.Done();
          });
        }
        wg.Wait();
      },
      Procs(2));
  EXPECT_EQ(threads.size(), 2u);
}

TEST(GoroutineStressTest, TwelveThousandLiveGoroutinesOnFourWorkers) {
  // Sized for the TSan stage: clang 14's TSan copes with 20,000+ live fibers (g++ 12's aborts near
  // 8,000). Every goroutine is alive at once, then they sleep, yield and hand off across workers.
  constexpr int kGoroutines = 12000;
  std::atomic<int64_t> sum{0};
  int64_t live = 0;
  greenline::Run(
      [&] {
        WaitGroup wg, gate;
        wg.Add(kGoroutines);
        gate.Add(1);
        for (int i = 0; i < kGoroutines; ++i) {
          Go([&, i] {
            gate.Wait();  // all alive before any finishes, however slow spawning is under TSan
            Sleep(std::chrono::milliseconds(1 + i % 20));
            for (int k = 0; k < 5; ++k) Yield();
            sum.fetch_add(i, std::memory_order_relaxed);
            wg.Done();
          });
        }
        live = NumGoroutine();
        gate.Done();
        wg.Wait();
      },
      Procs(4));
  EXPECT_EQ(live, kGoroutines + 1);
  EXPECT_EQ(sum.load(), int64_t{kGoroutines} * (kGoroutines - 1) / 2);
}

int64_t StatusKiB(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(key, 0) == 0) return std::stoll(line.substr(std::string(key).size()));
  }
  return -1;
}

int64_t MappingCount() {
  std::ifstream f("/proc/self/maps");
  std::string line;
  int64_t n = 0;
  while (std::getline(f, line)) ++n;
  return n;
}

// Unwinds through a destructor that blocks: records std::uncaught_exceptions() before and after.
struct BlockingDestructor {
  int* seen;
  ~BlockingDestructor() {
    int before = std::uncaught_exceptions();
    Yield();
    Sleep(std::chrono::microseconds(5));
    *seen = before * 10 + std::uncaught_exceptions();
  }
};

TEST(GoroutineStressTest, ExceptionStateTravelsWithItsGoroutineAcrossWorkers) {
  // C++ keeps "the exception being handled" and the uncaught count per thread. Goroutines that
  // block inside catch blocks and inside destructors run by unwinding, interleaved on 4 workers
  // and migrating between them, must each keep their own: `throw;` rethrows this goroutine's
  // exception, std::current_exception() is its own, std::uncaught_exceptions() counts its own
  // unwinding only. Without the per-goroutine state, `throw;` picks up another goroutine's
  // exception or finds none (std::terminate).
  std::atomic<int> wrong{0}, rounds{0};
  greenline::Run(
      [&] {
        WaitGroup wg;
        for (int i = 0; i < 200; ++i) {
          wg.Add(1);
          Go([&, i] {
            for (int round = 0; round < 20; ++round) {
              const std::string mine = std::to_string(i * 1000 + round);
              try {
                try {
                  throw std::runtime_error(mine);
                } catch (const std::runtime_error&) {
                  Yield();
                  if (round % 4 == 0) Sleep(std::chrono::microseconds(20));
                  if (std::uncaught_exceptions() != 0) wrong.fetch_add(1);
                  try {
                    std::rethrow_exception(std::current_exception());
                  } catch (const std::runtime_error& again) {
                    if (again.what() != mine) wrong.fetch_add(1);
                  }
                  Yield();
                  throw;  // after the switches (and likely a migration): still ours
                }
              } catch (const std::runtime_error& e) {
                if (e.what() != mine) wrong.fetch_add(1);
              }
              int seen = 0;
              try {
                BlockingDestructor d{&seen};
                throw round;
              } catch (int) {
              }
              if (seen != 11) wrong.fetch_add(1);  // one uncaught exception before and after
              if (std::uncaught_exceptions() != 0) wrong.fetch_add(1);
              rounds.fetch_add(1);
            }
            wg.Done();
          });
        }
        wg.Wait();
      },
      Procs(4));
  EXPECT_EQ(rounds.load(), 200 * 20);
  EXPECT_EQ(wrong.load(), 0);
}

TEST(GoroutineTest, MillionGoroutinesSleepThenExit) {
  constexpr int kGoroutines = 1'000'000;
  std::atomic<int> finished{0};
  int64_t maps_before = MappingCount(), maps_peak = 0;
  int64_t live_peak = 0;
  auto start = std::chrono::steady_clock::now();
  Options o;
  o.stack_size = 16 * 1024;
  greenline::Run(
      [&] {
        std::atomic<bool> all_spawned{false};
        WaitGroup wg;
        wg.Add(kGoroutines);
        for (int i = 0; i < kGoroutines; ++i) {
          Go([&] {
            // Sleep at least once, and until every goroutine exists: all million are alive at once.
            do {
              Sleep(1s);
            } while (!all_spawned.load(std::memory_order_relaxed));
            finished.fetch_add(1, std::memory_order_relaxed);
            wg.Done();
          });
          if (i % 4096 == 0) Yield();
        }
        live_peak = NumGoroutine();
        all_spawned = true;
        maps_peak = MappingCount();
        wg.Wait();
      },
      o);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  int64_t hwm_kib = StatusKiB("VmHWM:");
  EXPECT_EQ(finished.load(), kGoroutines);
  std::printf(
      "[ million ] %d goroutines in %.2f s; peak RSS %lld MiB (%.1f KiB per goroutine); "
      "mappings %lld -> %lld; peak live %lld\n",
      kGoroutines, seconds, static_cast<long long>(hwm_kib / 1024),
      static_cast<double>(hwm_kib) / kGoroutines, static_cast<long long>(maps_before),
      static_cast<long long>(maps_peak), static_cast<long long>(live_peak));
  RecordProperty("peak_rss_kib", static_cast<int>(hwm_kib));
  RecordProperty("mappings_peak", static_cast<int>(maps_peak));
  if (StackPool::KernelHasMadviseGuard()) {
    EXPECT_LT(maps_peak - maps_before, 2000) << "guarded stacks should not split mappings";
  }
  EXPECT_LT(hwm_kib / kGoroutines, 16) << "more than 16 KiB of RSS per sleeping goroutine";
}

}  // namespace
}  // namespace greenline
