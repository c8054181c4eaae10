// Tests for greenline/timer_chan.h: After fires once, not early, and at once for d <= 0; a
// Ticker ticks, drops ticks for a slow receiver instead of queueing them, stops for good, resets
// to a new period, rejects a non-positive period; and stopping tickers while their ticks are
// being delivered on other workers is safe (the state is freed right after Stop, checked by ASan).
#include "greenline/timer_chan.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "greenline/goroutine.h"
#include "greenline/runtime.h"
#include "greenline/wait_group.h"
#include "tests/util/child_process.h"

namespace greenline {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::Procs;

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
  // The timer owns itself until it fires; stopping the runtime first must free it (ASan's leak
  // check fails this test otherwise).
  greenline::Run([] { After(1h); });
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
  // memory (ASan) or race with the destructor (TSan).
  greenline::Run(
      [] {
        WaitGroup wg;
        for (int g = 0; g < 8; ++g) {
          wg.Add(1);
          Go([&wg] {
            for (int i = 0; i < 200; ++i) {
              auto t = std::make_unique<Ticker>(std::chrono::microseconds(1 + i % 7));
              if (i % 3 == 0) t->C().Recv();
              Yield();
              t.reset();
            }
            wg.Done();
          });
        }
        wg.Wait();
      },
      Procs(2));
}

}  // namespace
}  // namespace greenline
