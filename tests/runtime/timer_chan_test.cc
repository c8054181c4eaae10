// Tests for greenline/timer_chan.h: After fires once, not early, and at once for d <= 0, and
// its pending timers are freed, unfired, when the runtime stops (glibc's heap counters; ASan's leak
// check); a Ticker ticks, drops ticks for a slow receiver instead of queueing them, stops for good,
// resets to a new period, rejects a non-positive period; and stopping tickers while their ticks are
// being delivered on other workers is safe: no tick after Stop, no timer left behind, and the state
// freed right after Stop is not touched again (ASan, TSan).
#include "greenline/timer_chan.h"

#include <gtest/gtest.h>
#include <malloc.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "greenline/goroutine.h"
#include "greenline/runtime.h"
#include "greenline/wait_group.h"
#include "runtime/sched/timer.h"
#include "tests/util/child_process.h"

namespace greenline {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::Procs;

// Whether glibc's malloc serves this build: a sanitizer brings its own allocator, which glibc's
// counters (mallinfo2) do not see. Under ASan its leak check stands in for them.
#if defined(GREENLINE_ASAN) || defined(GREENLINE_TSAN)
constexpr bool kGlibcMalloc = false;
#else
constexpr bool kGlibcMalloc = true;
#endif

// Bytes glibc's malloc has handed out and not had back, over all threads' arenas.
int64_t HeapInUse() {
  struct mallinfo2 m = mallinfo2();
  return static_cast<int64_t>(m.uordblks + m.hblkhd);
}

TEST(TimerChanTest, TimingAfterFiresOnceNotEarly) {
  Clock::duration waited{};
  bool second_tick = true;
  greenline::Run([&] {
    auto start = Clock::now();
    auto ch = After(20ms);
    TimePoint fired = ch.Recv();
    waited = Clock::now() - start;
    EXPECT_GE(fired - start, 20ms);
    Sleep(30ms);
    second_tick = ch.TryRecv().has_value();
  });
  EXPECT_GE(waited, 20ms);
  EXPECT_FALSE(second_tick);
}

TEST(TimerChanTest, AfterWithNonPositiveDurationIsReadyAtOnce) {
  auto ch = After(0ns);  // no timer needed: works without a runtime
  EXPECT_EQ(ch.Len(), 1u);
  EXPECT_EQ(ch.Cap(), 1u);
  EXPECT_TRUE(After(-5s).TryRecv().has_value());
}

TEST(TimerChanTest, HugeDurationsSaturateInsteadOfFiringAtOnce) {
  bool fired = true, ticked = true;
  greenline::Run([&] {
    auto ch = After(std::chrono::nanoseconds::max());
    Ticker t(std::chrono::nanoseconds::max());
    Sleep(20ms);
    fired = ch.TryRecv().has_value();
    ticked = t.C().TryRecv().has_value();
  });
  EXPECT_FALSE(fired);
  EXPECT_FALSE(ticked);
}

TEST(TimerChanTest, AfterPendingWhenTheRuntimeStopsIsFreed) {
  // The timer owns itself (and a handle on its channel) until it fires; stopping the runtime first
  // must free it, without firing it. Many timers, so that leaking them shows in the heap: each
  // would keep a runtime timer at least (kLeakIfNotFreed for all), while the heap in use moves by
  // a few KiB from one run of the runtime to the next.
  constexpr int kTimers = 10000;
  constexpr int64_t kLeakIfNotFreed = kTimers * int64_t{sizeof(internal::Timer)};
  greenline::Run([] {});  // what the runtime keeps for the life of the process is allocated now
  int64_t before = HeapInUse(), during = 0;
  int64_t pending = 0;
  Chan<TimePoint> kept;
  greenline::Run([&] {
    kept = After(1h);
    for (int i = 1; i < kTimers; ++i) After(1h);
    pending = internal::PendingTimers();
    during = HeapInUse();
  });
  int64_t after = HeapInUse();
  EXPECT_EQ(pending, kTimers) << "the timers were not all pending when the runtime stopped";
  EXPECT_FALSE(kept.TryRecv().has_value()) << "stopping the runtime fired a pending timer";
  if (kGlibcMalloc) {
    EXPECT_GE(during - before, kLeakIfNotFreed) << "the heap counters do not see the timers";
    EXPECT_LT(after - before, kLeakIfNotFreed / 2)
        << "pending After timers were not freed when the runtime stopped (" << after - before
        << " bytes still in use of the " << during - before << " they held)";
  }
}

TEST(TimerChanTest, TimingTickerTicksInOrderAndStopEndsIt) {
  std::vector<TimePoint> ticks;
  TimePoint start;
  bool after_stop = true;
  greenline::Run([&] {
    start = Clock::now();
    Ticker t(5ms);
    for (int i = 0; i < 4; ++i) ticks.push_back(t.C().Recv());
    t.Stop();
    t.C().TryRecv();  // a tick that raced with Stop may still sit in the channel
    Sleep(20ms);
    after_stop = t.C().TryRecv().has_value();
  });
  ASSERT_EQ(ticks.size(), 4u);
  // The k-th tick is due (k+1) periods after the start and never fires early (a late tick does not
  // delay the next one, so gaps between ticks may be shorter than a period).
  for (size_t i = 0; i < ticks.size(); ++i) {
    EXPECT_GE(ticks[i] - start, 5ms * static_cast<int>(i + 1));
    if (i > 0) {
      EXPECT_GT(ticks[i], ticks[i - 1]);
    }
  }
  EXPECT_FALSE(after_stop);
}

TEST(TimerChanTest, TimingSlowReceiverGetsOneTickNotABacklog) {
  size_t queued = 0;
  greenline::Run([&] {
    Ticker t(1ms);
    Sleep(30ms);  // ~30 periods pass with nobody receiving
    queued = t.C().Len();
  });
  EXPECT_EQ(queued, 1u);
}

TEST(TimerChanTest, TimingResetChangesThePeriod) {
  Clock::duration gap{};
  greenline::Run([&] {
    Ticker t(1h);
    t.Reset(10ms);
    auto start = Clock::now();
    t.C().Recv();
    gap = Clock::now() - start;
  });
  EXPECT_GE(gap, 9ms);
  EXPECT_LT(gap, 10s);
}

TEST(TimerChanTest, NonPositivePeriodThrowsGoMessage) {
  std::string what;
  greenline::Run([&] {
    try {
      Ticker t(0ns);
    } catch (const RuntimeError& e) {
      what = e.what();
    }
  });
  EXPECT_EQ(what, "non-positive interval for NewTicker");
}

TEST(TimerChanStressTest, TickersStoppedWhileTheirTicksAreDelivered) {
  // Many short-lived tickers with tiny periods on two workers: each is destroyed (its state freed)
  // while ticks fire on either worker. A callback still running after Stop would touch freed
  // memory (ASan) or race with the destructor (TSan). Every other ticker's channel is kept past
  // its destruction (the others' go with their tickers): once the tick that may sit in it is
  // drained, nothing more may arrive (its period passes many times over before the end), and no
  // ticker's timer may be left in a heap.
  constexpr int kGoroutines = 8, kTickers = 200;
  std::atomic<int> late_ticks{0};
  int64_t pending_at_end = -1;
  greenline::Run(
      [&] {
        WaitGroup wg;
        for (int g = 0; g < kGoroutines; ++g) {
          wg.Add(1);
          Go([&] {
            std::vector<Chan<TimePoint>> kept;
            for (int i = 0; i < kTickers; ++i) {
              auto t = std::make_unique<Ticker>(std::chrono::microseconds(1 + i % 7));
              if (i % 3 == 0) t->C().Recv();
              Yield();
              if (i % 2 == 0) kept.push_back(t->C());
              t.reset();
              if (i % 2 == 0) kept.back().TryRecv();  // a tick delivered before Stop may stay
            }
            Sleep(1ms);  // 140 periods of the slowest ticker at least
            for (const Chan<TimePoint>& c : kept) {
              if (c.TryRecv()) late_ticks.fetch_add(1);
            }
            wg.Done();
          });
        }
        wg.Wait();
        pending_at_end = internal::PendingTimers();
      },
      Procs(2));
  EXPECT_EQ(late_ticks.load(), 0) << "a stopped ticker ticked";
  EXPECT_EQ(pending_at_end, 0) << "a stopped ticker's timer is still in a heap";
}

}  // namespace
}  // namespace greenline
