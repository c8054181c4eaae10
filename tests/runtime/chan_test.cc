// Tests for greenline/chan.h: unbuffered rendezvous, buffering and FIFO order, close (drain,
// zero value, waking every waiter, Go's panics as RuntimeError and their unrecovered report),
// nil channels, move-only values, range, non-blocking operations, wait reasons; Select (readiness,
// default, uniform choice among ready cases, sends, closed channels, empty select); the deadlock
// detector with channels (positive and negative); and stress across workers (many-to-many with
// per-sender order checks, close racing with sends and receives, selects handing off values).
#include "greenline/chan.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "greenline/goroutine.h"
#include "greenline/runtime.h"
#include "greenline/state.h"
#include "greenline/timer_chan.h"
#include "greenline/wait_group.h"
#include "tests/util/child_process.h"
#include "tests/util/goroutines.h"

namespace greenline {
namespace {

using namespace std::chrono_literals;
using testing::Procs;
using testing::RunInChild;

// Waits until `n` goroutines are parked for `reason`; fails the test if they never are.
void WaitParked(WaitReason reason, int64_t n) {
  if (!testing::AwaitParked(reason, n)) {
    FAIL() << "goroutines never parked for " << WaitReasonName(reason);
  }
}

TEST(ChanTest, UnbufferedSendWaitsForTheReceiver) {
  bool sent = false, sent_before_recv = true;
  int got = 0;
  greenline::Run([&] {
    auto ch = MakeChan<int>();
    Go([&, ch]() mutable {
      ch.Send(42);
      sent = true;
    });
    WaitParked(WaitReason::kChanSend, 1);
    sent_before_recv = sent;
    got = ch.Recv();
    for (int i = 0; i < 10 && !sent; ++i) Yield();
  });
  EXPECT_FALSE(sent_before_recv);
  EXPECT_TRUE(sent);
  EXPECT_EQ(got, 42);
}

TEST(ChanTest, BufferedHoldsCapValuesInOrderThenWouldBlock) {
  greenline::Run([&] {
    auto ch = MakeChan<int>(3);
    EXPECT_EQ(ch.Cap(), 3u);
    for (int i = 1; i <= 3; ++i) EXPECT_TRUE(ch.TrySend(i));
    EXPECT_FALSE(ch.TrySend(4));
    EXPECT_EQ(ch.Len(), 3u);
    EXPECT_EQ(ch.Recv(), 1);
    EXPECT_TRUE(ch.TrySend(4));
    EXPECT_EQ(ch.Recv(), 2);
    EXPECT_EQ(ch.Recv(), 3);
    EXPECT_EQ(ch.Recv(), 4);
    EXPECT_EQ(ch.Len(), 0u);
    bool closed = true;
    EXPECT_FALSE(ch.TryRecv(&closed).has_value());
    EXPECT_FALSE(closed);
  });
}

TEST(ChanTest, FullBufferHandsWaitingSendersOnInOrder) {
  std::vector<int> got;
  greenline::Run([&] {
    auto ch = MakeChan<int>(2);
    ch.Send(0);
    ch.Send(1);
    WaitGroup senders;
    for (int i = 2; i < 6; ++i) {
      senders.Add(1);
      Go([&senders, ch, i]() mutable {
        ch.Send(i);
        senders.Done();
      });
      WaitParked(WaitReason::kChanSend, i - 1);  // each queues behind the previous one
    }
    for (int i = 0; i < 6; ++i) got.push_back(ch.Recv());
    senders.Wait();
  });
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4, 5}));
}

TEST(ChanTest, WaitingReceiversAreServedInArrivalOrder) {
  std::vector<int> got(5, -1);  // got[i]: what the i-th receiver to arrive received
  greenline::Run([&] {
    auto ch = MakeChan<int>();
    WaitGroup wg;
    for (int i = 0; i < 5; ++i) {
      wg.Add(1);
      Go([&, ch, i]() mutable {
        got[static_cast<size_t>(i)] = ch.Recv();
        wg.Done();
      });
      WaitParked(WaitReason::kChanReceive, i + 1);
    }
    for (int v = 0; v < 5; ++v) ch.Send(v);
    wg.Wait();
  });
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(ChanTest, CloseDrainsBufferThenGivesZeroWithOkFalse) {
  greenline::Run([&] {
    auto ch = MakeChan<std::string>(4);
    ch.Send("a");
    ch.Send("b");
    ch.Close();
    EXPECT_EQ(ch.RecvOk(), std::optional<std::string>("a"));
    EXPECT_EQ(ch.Recv(), "b");
    EXPECT_EQ(ch.RecvOk(), std::nullopt);
    EXPECT_EQ(ch.Recv(), "");  // the zero value
    bool closed = false;
    EXPECT_FALSE(ch.TryRecv(&closed).has_value());
    EXPECT_TRUE(closed);
  });
}

TEST(ChanTest, CloseWakesEveryWaitingReceiver) {
  std::atomic<int> woke_not_ok{0};
  greenline::Run(
      [&] {
        auto ch = MakeChan<int>();
        WaitGroup wg;
        for (int i = 0; i < 50; ++i) {
          wg.Add(1);
          Go([&, ch]() mutable {
            if (!ch.RecvOk()) woke_not_ok.fetch_add(1);
            wg.Done();
          });
        }
        WaitParked(WaitReason::kChanReceive, 50);
        ch.Close();
        wg.Wait();
      },
      Procs(2));
  EXPECT_EQ(woke_not_ok.load(), 50);
}

TEST(ChanTest, SendOnClosedChannelThrowsGoMessage) {
  std::string now, waiting;
  greenline::Run([&] {
    auto ch = MakeChan<int>();
    WaitGroup wg;
    wg.Add(1);
    Go([&, ch]() mutable {
      try {
        ch.Send(1);  // blocks; close wakes it with the panic
      } catch (const RuntimeError& e) {
        waiting = e.what();
      }
      wg.Done();
    });
    WaitParked(WaitReason::kChanSend, 1);
    ch.Close();
    wg.Wait();
    try {
      ch.Send(2);
    } catch (const RuntimeError& e) {
      now = e.what();
    }
  });
  EXPECT_EQ(now, "send on closed channel");
  EXPECT_EQ(waiting, "send on closed channel");
}

TEST(ChanTest, CloseOfClosedAndOfNilChannelThrow) {
  std::string closed_twice, nil;
  auto ch = MakeChan<int>(1);  // channels need no runtime until something waits
  ch.Close();
  try {
    ch.Close();
  } catch (const RuntimeError& e) {
    closed_twice = e.what();
  }
  try {
    Chan<int>().Close();
  } catch (const RuntimeError& e) {
    nil = e.what();
  }
  EXPECT_EQ(closed_twice, "close of closed channel");
  EXPECT_EQ(nil, "close of nil channel");
}

TEST(ChanTest, UnrecoveredChannelPanicEndsTheProgramAsGoDoes) {
  auto r = RunInChild([] {
    greenline::Run([] {
      auto ch = MakeChan<int>(1);
      ch.Close();
      ch.Close();
    });
  });
  ASSERT_TRUE(r.exited) << r.output;
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("panic: close of closed channel\n\ngoroutine 1 [running]:"),
            std::string::npos)
      << r.output;
}

TEST(ChanTest, MoveOnlyValuesMoveAndFailedTrySendKeepsTheValue) {
  greenline::Run([&] {
    auto ch = MakeChan<std::unique_ptr<int>>(1);
    EXPECT_TRUE(ch.TrySend(std::make_unique<int>(1)));
    auto keep = std::make_unique<int>(2);
    EXPECT_FALSE(ch.TrySend(std::move(keep)));
    ASSERT_NE(keep, nullptr);  // not lost
    EXPECT_EQ(*keep, 2);
    EXPECT_EQ(*ch.Recv(), 1);
    auto unbuffered = MakeChan<std::unique_ptr<int>>();
    WaitGroup wg;
    wg.Add(1);
    Go([&wg, unbuffered]() mutable {
      unbuffered.Send(std::make_unique<int>(3));
      wg.Done();
    });
    EXPECT_EQ(*unbuffered.Recv(), 3);
    wg.Wait();
  });
}

TEST(ChanTest, BufferedValuesAreDestroyedWithTheChannel) {
  auto counter = std::make_shared<int>(0);
  {
    auto ch = MakeChan<std::shared_ptr<int>>(4);
    ch.TrySend(counter);
    ch.TrySend(counter);
    EXPECT_EQ(counter.use_count(), 3);
  }
  EXPECT_EQ(counter.use_count(), 1);
}

TEST(ChanTest, RangeReceivesUntilClosed) {
  std::vector<int> got;
  greenline::Run([&] {
    auto ch = MakeChan<int>(2);
    WaitGroup wg;
    wg.Add(1);
    Go([&wg, ch]() mutable {
      for (int i = 0; i < 10; ++i) ch.Send(i);
      ch.Close();
      wg.Done();
    });
    for (int v : ch) got.push_back(v);
    wg.Wait();
  });
  ASSERT_EQ(got.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(got[i], i);
}

TEST(ChanTest, RangeMovesMoveOnlyValues) {
  int sum = 0;
  greenline::Run([&] {
    auto ch = MakeChan<std::unique_ptr<int>>(3);
    for (int i = 1; i <= 3; ++i) ch.Send(std::make_unique<int>(i));
    ch.Close();
    for (std::unique_ptr<int> p : ch) sum += *p;
  });
  EXPECT_EQ(sum, 6);
}

TEST(ChanTest, NilChannelNeverReadyAndBlocksForever) {
  greenline::Run([&] {
    Chan<int> nil;
    EXPECT_FALSE(nil);
    EXPECT_FALSE(nil.TrySend(1));
    EXPECT_FALSE(nil.TryRecv().has_value());
    EXPECT_EQ(nil.Len(), 0u);
    EXPECT_EQ(nil.Cap(), 0u);
    Go([nil]() mutable { nil.Recv(); });
    Go([nil]() mutable { nil.Send(1); });
    WaitParked(WaitReason::kChanReceiveNilChan, 1);
    WaitParked(WaitReason::kChanSendNilChan, 1);
    int chosen = Select(RecvCase(nil), DefaultCase());
    EXPECT_EQ(chosen, 1);
    // Blocking-class waits: the two are counted as blocking, not running.
    StateCounts c = ReadStateCounts();
    EXPECT_EQ(c.blocking, 2);
  });
}

TEST(ChanTest, HandlesCompareAndShareOneChannel) {
  auto a = MakeChan<int>(1);
  Chan<int> b = a;
  EXPECT_TRUE(a == b);
  EXPECT_FALSE(a == MakeChan<int>(1));
  EXPECT_TRUE(b.TrySend(5));
  EXPECT_EQ(a.Len(), 1u);
  EXPECT_EQ(a.TryRecv(), std::optional<int>(5));
}

// ---- select ------------------------------------------------------------------------------------

TEST(SelectTest, RunsTheReadyCaseHandlerOnly) {
  greenline::Run([&] {
    auto a = MakeChan<int>(1);
    auto b = MakeChan<std::string>(1);
    b.Send("x");
    int ran_a = 0;
    std::string got;
    int chosen = Select(RecvCase(a, [&](int) { ++ran_a; }),
                        RecvCase(b, [&](std::string s, bool ok) { got = ok ? s : "?"; }));
    EXPECT_EQ(chosen, 1);
    EXPECT_EQ(ran_a, 0);
    EXPECT_EQ(got, "x");
  });
}

TEST(SelectTest, DefaultRunsWhenNothingIsReadyEvenOffRuntime) {
  auto a = MakeChan<int>();
  bool defaulted = false;
  int chosen = Select(RecvCase(a), SendCase(a, 1), DefaultCase([&] { defaulted = true; }));
  EXPECT_EQ(chosen, 2);
  EXPECT_TRUE(defaulted);
}

TEST(SelectTest, ChoosesUniformlyAmongReadyCases) {
  // Three always-ready receive cases: each should win about a third of 30,000 selects. With
  // p = 1/3 the standard deviation of a count is ~82; 6 sigma is ~490.
  constexpr int kTrials = 30000;
  int wins[3] = {};
  greenline::Run([&] {
    Chan<int> ch[3] = {MakeChan<int>(1), MakeChan<int>(1), MakeChan<int>(1)};
    for (auto& c : ch) c.Send(0);
    for (int t = 0; t < kTrials; ++t) {
      int i = Select(RecvCase(ch[0]), RecvCase(ch[1]), RecvCase(ch[2]));
      ++wins[i];
      ch[i].Send(0);
    }
  });
  for (int w : wins)
    EXPECT_NEAR(w, kTrials / 3, 490) << wins[0] << " " << wins[1] << " " << wins[2];
}

TEST(SelectTest, BlocksUntilACaseIsReadyThenMovesOnlyTheChosenSend) {
  greenline::Run([&] {
    auto out = MakeChan<std::unique_ptr<int>>();
    auto in = MakeChan<int>();
    auto other = MakeChan<std::unique_ptr<int>>();
    std::unique_ptr<int> got;
    WaitGroup wg;
    wg.Add(1);
    Go([&, out]() mutable {
      got = out.Recv();
      wg.Done();
    });
    bool sent = false;
    int chosen = Select(SendCase(other, std::make_unique<int>(1)), RecvCase(in),
                        SendCase(out, std::make_unique<int>(7), [&] { sent = true; }));
    EXPECT_EQ(chosen, 2);
    EXPECT_TRUE(sent);
    wg.Wait();
    ASSERT_NE(got, nullptr);
    EXPECT_EQ(*got, 7);
    EXPECT_EQ(other.Len(), 0u);
  });
}

TEST(SelectTest, SendCaseNotChosenLeavesTheCallersValue) {
  greenline::Run([&] {
    auto full = MakeChan<std::unique_ptr<int>>();  // unbuffered, nobody receiving: never ready
    auto p = std::make_unique<int>(5);
    int chosen = Select(SendCase(full, std::move(p)), DefaultCase());
    EXPECT_EQ(chosen, 1);
    ASSERT_NE(p, nullptr);  // the default ran: the value stays with its owner
    EXPECT_EQ(*p, 5);
    auto room = MakeChan<std::unique_ptr<int>>(1);
    chosen = Select(SendCase(room, std::move(p)), DefaultCase());
    EXPECT_EQ(chosen, 0);
    EXPECT_EQ(p, nullptr);  // chosen: moved into the channel
    EXPECT_EQ(*room.Recv(), 5);
  });
}

TEST(SelectTest, ManyCasesOneReady) {
  // More cases than the select keeps on its stack: the rest of its bookkeeping is on the heap.
  greenline::Run([&] {
    std::vector<Chan<int>> ch;
    for (int i = 0; i < 12; ++i) ch.push_back(MakeChan<int>());
    WaitGroup wg;
    wg.Add(1);
    int got = -1;
    Go([&] {
      got = Select(RecvCase(ch[0]), RecvCase(ch[1]), RecvCase(ch[2]), RecvCase(ch[3]),
                   RecvCase(ch[4]), RecvCase(ch[5]), RecvCase(ch[6]), RecvCase(ch[7]),
                   RecvCase(ch[8]), RecvCase(ch[9]), RecvCase(ch[10]), RecvCase(ch[11]));
      wg.Done();
    });
    WaitParked(WaitReason::kSelect, 1);
    ch[9].Send(1);
    wg.Wait();
    EXPECT_EQ(got, 9);
    // The select left every other queue: no stale receiver takes a value.
    for (auto& c : ch) EXPECT_FALSE(c.TrySend(0));
  });
}

TEST(SelectTest, WaitingSelectIsWokenByCloseWithOkFalse) {
  greenline::Run([&] {
    auto a = MakeChan<int>(), b = MakeChan<int>();
    bool ok = true;
    int chosen = -1;
    WaitGroup wg;
    wg.Add(1);
    Go([&, a, b] {
      chosen = Select(RecvCase(a, [&](int, bool o) { ok = o; }), RecvCase(b));
      wg.Done();
    });
    WaitParked(WaitReason::kSelect, 1);
    a.Close();
    wg.Wait();
    EXPECT_EQ(chosen, 0);
    EXPECT_FALSE(ok);
    // The select left b's queue: a later sender on b finds no stale receiver.
    EXPECT_FALSE(b.TrySend(1));
  });
}

TEST(SelectTest, ChosenSendOnClosedChannelThrows) {
  greenline::Run([&] {
    auto a = MakeChan<int>(1);
    a.Close();
    std::string what;
    try {
      Select(SendCase(a, 1), DefaultCase());
    } catch (const RuntimeError& e) {
      what = e.what();
    }
    EXPECT_EQ(what, "send on closed channel");
  });
}

TEST(SelectTest, EmptySelectBlocksForeverWithItsWaitReason) {
  greenline::Run([&] {
    Go([] { Select(); });
    WaitParked(WaitReason::kSelectNoCases, 1);
    EXPECT_EQ(ReadStateCounts().blocking, 1);
  });
}

TEST(SelectTest, SameChannelInTwoCasesOfOneSelect) {
  greenline::Run([&] {
    auto ch = MakeChan<int>(1);
    int chosen = Select(SendCase(ch, 5), RecvCase(ch));
    EXPECT_EQ(chosen, 0);  // only the send is ready (the buffer is empty)
    int got = 0;
    chosen = Select(SendCase(ch, 6), RecvCase(ch, [&](int v) { got = v; }));
    EXPECT_EQ(chosen, 1);  // now only the receive is (the buffer is full)
    EXPECT_EQ(got, 5);
  });
}

// ---- deadlock detection ------------------------------------------------------------------------

TEST(ChanDeadlockTest, AllGoroutinesBlockedOnChannelsIsReported) {
  auto r = RunInChild([] {
    greenline::Run(
        [] {
          auto a = MakeChan<int>(), b = MakeChan<int>();
          Go([a, b]() mutable {
            a.Recv();
            b.Send(1);
          });
          b.Recv();  // waits for the goroutine, which waits for us
        },
        Procs(2));
  });
  ASSERT_TRUE(r.exited) << r.output;
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("fatal error: all goroutines are asleep - deadlock!"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("[chan receive]"), std::string::npos) << r.output;
}

TEST(ChanDeadlockTest, EmptySelectInMainIsADeadlock) {
  auto r = RunInChild([] { greenline::Run([] { Select(); }); });
  ASSERT_TRUE(r.exited) << r.output;
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("all goroutines are asleep - deadlock!"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("[select (no cases)]"), std::string::npos) << r.output;
}

TEST(ChanDeadlockTest, PendingTimerOrSleeperIsNotADeadlock) {
  auto r = RunInChild([] {
    greenline::Run(
        [] {
          auto never = MakeChan<int>();
          // Blocked on a channel, but a timer will end the select: not a deadlock.
          int chosen = Select(RecvCase(never), RecvCase(After(30ms)));
          if (chosen != 1) _exit(3);
          // Blocked on a channel that a sleeping goroutine will feed: not a deadlock either.
          auto later = MakeChan<int>();
          Go([later]() mutable {
            Sleep(30ms);
            later.Send(1);
          });
          if (later.Recv() != 1) _exit(4);
        },
        Procs(2));
  });
  ASSERT_TRUE(r.exited) << r.output;
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST(ChanDeadlockTest, StressTimerChannelsNeverLookDeadlocked) {
  // The only goroutine waits on timer channels, over and over, on two workers. A worker that fires
  // another's timer from the idle list, or a ticker between firing and re-arming, leaves a moment
  // with no timer in any heap and the goroutine not yet runnable: the detector must not judge then.
  auto r = RunInChild([] {
    greenline::Run(
        [] {
          auto never = MakeChan<int>();
          for (int i = 0; i < 20000; ++i) {
            if (i % 2 == 0) {
              After(std::chrono::microseconds(i % 20)).Recv();
            } else {
              Select(RecvCase(never), RecvCase(After(std::chrono::microseconds(5))));
            }
          }
          Ticker t(std::chrono::microseconds(50));
          for (int i = 0; i < 2000; ++i) t.C().Recv();
        },
        Procs(2));
  });
  ASSERT_TRUE(r.exited) << r.output;
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

// ---- stress across workers (also under TSan) ---------------------------------------------------

void ManyToMany(size_t cap, int senders, int receivers, int per_sender) {
  // Each value carries (sender, sequence). Every receiver must see each sender's sequence numbers
  // strictly increasing (FIFO per sender); together they must see every value exactly once.
  std::vector<std::atomic<int>> seen(static_cast<size_t>(senders * per_sender));
  std::atomic<int> order_violations{0};
  greenline::Run(
      [&] {
        auto ch = MakeChan<std::pair<int, int>>(cap);
        WaitGroup senders_done, receivers_done;
        for (int s = 0; s < senders; ++s) {
          senders_done.Add(1);
          Go([&, ch, s]() mutable {
            for (int i = 0; i < per_sender; ++i) ch.Send({s, i});
            senders_done.Done();
          });
        }
        for (int r = 0; r < receivers; ++r) {
          receivers_done.Add(1);
          Go([&, ch]() mutable {
            std::vector<int> last(static_cast<size_t>(senders), -1);
            for (auto [s, i] : ch) {
              if (i <= last[static_cast<size_t>(s)]) order_violations.fetch_add(1);
              last[static_cast<size_t>(s)] = i;
              seen[static_cast<size_t>(s * per_sender + i)].fetch_add(1);
            }
            receivers_done.Done();
          });
        }
        senders_done.Wait();
        ch.Close();
        receivers_done.Wait();
      },
      Procs(4));
  EXPECT_EQ(order_violations.load(), 0);
  int wrong = 0;
  for (auto& n : seen) wrong += n.load() != 1;
  EXPECT_EQ(wrong, 0) << "values lost or duplicated";
}

TEST(ChanStressTest, ManyToManyUnbuffered) { ManyToMany(0, 8, 8, 2000); }
TEST(ChanStressTest, ManyToManyBuffered) { ManyToMany(16, 8, 8, 2000); }

TEST(ChanStressTest, CloseRacesWithSendersAndReceivers) {
  // Senders send until the channel closes under them (the panic is caught); every value a send
  // reported as delivered is received exactly once, and nothing else is.
  for (int round = 0; round < 20; ++round) {
    std::atomic<int64_t> sent_sum{0}, received_sum{0};
    greenline::Run(
        [&] {
          auto ch = MakeChan<int64_t>(static_cast<size_t>(round % 3));
          WaitGroup wg;
          for (int s = 0; s < 4; ++s) {
            wg.Add(1);
            Go([&, ch, s]() mutable {
              try {
                for (int64_t i = 1;; ++i) {
                  ch.Send(s * 1'000'000 + i);
                  sent_sum.fetch_add(s * 1'000'000 + i);
                }
              } catch (const RuntimeError&) {
              }
              wg.Done();
            });
          }
          for (int r = 0; r < 4; ++r) {
            wg.Add(1);
            Go([&, ch]() mutable {
              for (int64_t v : ch) received_sum.fetch_add(v);
              wg.Done();
            });
          }
          Sleep(2ms);
          ch.Close();
          wg.Wait();
        },
        Procs(2));
    ASSERT_EQ(sent_sum.load(), received_sum.load()) << "round " << round;
  }
}

TEST(ChanStressTest, SelectsHandOffWithoutLossAcrossWorkers) {
  // Workers forward values from two inputs to one output through selects; a collector sums them.
  constexpr int kPerInput = 5000;
  int64_t total = 0;
  greenline::Run(
      [&] {
        auto in1 = MakeChan<int>(), in2 = MakeChan<int>(4), out = MakeChan<int>(2);
        auto quit = MakeChan<int>();
        WaitGroup forwarders;
        for (int f = 0; f < 4; ++f) {
          forwarders.Add(1);
          Go([&, in1, in2, out, quit]() mutable {
            for (bool running = true; running;) {
              Select(RecvCase(in1, [&](int v) { out.Send(v); }),
                     RecvCase(in2, [&](int v) { out.Send(v); }),
                     RecvCase(quit, [&] { running = false; }));
            }
            forwarders.Done();
          });
        }
        forwarders.Add(2);
        Go([&forwarders, in1]() mutable {
          for (int i = 1; i <= kPerInput; ++i) in1.Send(i);
          forwarders.Done();
        });
        Go([&forwarders, in2]() mutable {
          for (int i = 1; i <= kPerInput; ++i) in2.Send(-2 * i);
          forwarders.Done();
        });
        for (int i = 0; i < 2 * kPerInput; ++i) total += out.Recv();
        quit.Close();
        forwarders.Wait();
      },
      Procs(2));
  int64_t want = 0;
  for (int i = 1; i <= kPerInput; ++i) want += i - 2 * i;
  EXPECT_EQ(total, want);
}

TEST(ChanStressTest, PipelineHandOffsNeverTripTheDeadlockDetector) {
  // A chain of goroutines passing values through unbuffered channels keeps every goroutine but
  // one blocked most of the time, on every worker: the detector must never fire.
  auto r = RunInChild([] {
    greenline::Run(
        [] {
          constexpr int kStages = 64, kValues = 3000;
          std::vector<Chan<int>> ch;
          for (int i = 0; i <= kStages; ++i) ch.push_back(MakeChan<int>());
          for (int i = 0; i < kStages; ++i) {
            Go([in = ch[i], out = ch[i + 1]]() mutable {
              for (int v : in) out.Send(v + 1);
              out.Close();
            });
          }
          Go([first = ch[0]]() mutable {
            for (int v = 0; v < kValues; ++v) first.Send(v);
            first.Close();
          });
          int64_t sum = 0;
          for (int v : ch[kStages]) sum += v;
          int64_t want = int64_t{kValues} * (kValues - 1) / 2 + int64_t{kValues} * kStages;
          if (sum != want) _exit(3);
        },
        Procs(2));
  });
  ASSERT_TRUE(r.exited) << r.output;
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

}  // namespace
}  // namespace greenline
