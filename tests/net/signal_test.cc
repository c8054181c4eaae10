// Tests for greenline/signal.h (Go's signal.Notify and Stop) with real signals, each sent with
// kill(2) or raise(3) inside a forked child (tests/util/child_process.h) where a wrong disposition
// can only kill the child, and each run on both netpoller backends (the delivery goroutine waits on
// the netpoller; io_uring skipped, with the reason, where no ring can be set up). They check
// delivery to one channel and to two watching one signal; that a full channel misses a signal
// rather than blocking delivery; that Notify again adds signals (a real-time one among them); that
// Stop ends delivery to that channel at once, gives the default action back (SIGTERM kills the
// child) or the handler that was there before; that the only goroutine waiting for a signal is not
// reported as deadlocked, and that once every channel is Stopped a deadlock is reported again;
// Notify from a plain thread; a signal blocked before Run() arriving all the same; three Runs in
// one process, each with its own Notify, leaving no descriptor and no handler behind. Without a
// child: the signals Notify refuses (SIGKILL, SIGSTOP, the runtime's SIGSEGV, SIGBUS, SIGURG and
// SIGQUIT, glibc's 32 and 33, non-signals), a nil channel, an empty list and no runtime, each
// refused before anything changes.
//
// Nothing here is timed: every wait that must end ends on an event, never on a clock. A child
// waiting for a signal that never comes gives up after 20 s (RecvSignal) or is killed by the
// RunInChild timeout: safety nets, not assertions.
#include "greenline/signal.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "greenline/chan.h"
#include "greenline/goroutine.h"
#include "greenline/runtime.h"
#include "greenline/runtime_error.h"
#include "greenline/state.h"
#include "greenline/timer_chan.h"
#include "tests/util/child_process.h"
#include "tests/util/goroutines.h"
#include "tests/util/net.h"

namespace greenline {
namespace {

using namespace std::chrono_literals;
using testing::ChildResult;
using testing::IsFatalError;
using testing::Say;

constexpr int kChildTimeoutSeconds = 60;

// In a child, where a gtest assertion would not reach the parent: says what failed.
#define CHILD_CHECK(cond)                                            \
  do {                                                               \
    if (!(cond)) Say("check failed: %s (line %d)", #cond, __LINE__); \
  } while (0)

// In a child: the next signal on `c`, or -1 (said) if none came within a limit far beyond any
// delivery: a safety net, so that a broken delivery fails with a message instead of a timeout.
int RecvSignal(const Chan<int>& c) {
  int got = -1;
  Select(RecvCase(c, [&](int sig) { got = sig; }),
         RecvCase(After(20s), [] { Say("check failed: no signal within 20 s"); }));
  return got;
}

// The handler `sig` has now in this process.
void (*HandlerOf(int sig))(int) {
  struct sigaction sa {};
  sigaction(sig, nullptr, &sa);
  return sa.sa_handler;
}

// A handler installed before Notify, to see that Stop gives it back.
std::atomic<int> g_previous_handler_calls{0};
void PreviousHandler(int) { g_previous_handler_calls.fetch_add(1); }

// Success if the child exited 0, said `last` and said no "check failed".
::testing::AssertionResult ChildPassed(const ChildResult& r, const std::string& last) {
  if (!r.exited || r.exit_code != 0) {
    return ::testing::AssertionFailure()
           << "the child did not exit 0 (exited " << r.exited << ", status " << r.exit_code
           << ", signal " << r.signal << (r.timed_out ? ", timed out" : "") << ")\n"
           << r.output;
  }
  if (r.output.find("check failed") != std::string::npos) {
    return ::testing::AssertionFailure() << r.output;
  }
  if (r.output.find(last) == std::string::npos) {
    return ::testing::AssertionFailure() << "no \"" << last << "\" in:\n" << r.output;
  }
  return ::testing::AssertionSuccess();
}

class SignalTest : public ::testing::TestWithParam<PollerKind> {
 protected:
  void SetUp() override {
    if (GetParam() == PollerKind::kIoUring) {
      std::string why = testing::UringUnavailableReason();
      if (!why.empty()) GTEST_SKIP() << "no io_uring poller here: " << why;
    }
  }

  Options Opts(int procs = 2) const {
    Options o;
    o.max_procs = procs;
    o.poller = GetParam();
    return o;
  }

  // Runs `main_goroutine` on a runtime with this test's poller, in a forked child.
  ChildResult RunChild(const std::function<void()>& main_goroutine, int procs = 2) const {
    return testing::RunRuntimeInChild(main_goroutine, Opts(procs), kChildTimeoutSeconds);
  }
};

INSTANTIATE_TEST_SUITE_P(Pollers, SignalTest,
                         ::testing::Values(PollerKind::kEpoll, PollerKind::kIoUring),
                         testing::PollerParamName);

TEST_P(SignalTest, NotifyDeliversASignalToTheChannel) {
  ChildResult r = RunChild([] {
    auto c = MakeChan<int>(1);
    signal::Notify(c, {SIGUSR1});
    kill(getpid(), SIGUSR1);
    CHILD_CHECK(RecvSignal(c) == SIGUSR1);
    signal::Stop(c);
    Say("done");
  });
  EXPECT_TRUE(ChildPassed(r, "done"));
}

TEST_P(SignalTest, TwoChannelsWatchingOneSignalBothReceiveIt) {
  ChildResult r = RunChild([] {
    auto a = MakeChan<int>(1);
    auto b = MakeChan<int>(1);
    signal::Notify(a, {SIGUSR1});
    signal::Notify(b, {SIGUSR1, SIGUSR2});
    kill(getpid(), SIGUSR1);
    CHILD_CHECK(RecvSignal(a) == SIGUSR1);
    CHILD_CHECK(RecvSignal(b) == SIGUSR1);
    // SIGUSR2 goes to b alone.
    kill(getpid(), SIGUSR2);
    CHILD_CHECK(RecvSignal(b) == SIGUSR2);
    signal::Stop(a);  // waits out a delivery in progress: a's share of it, if any, is in a now
    CHILD_CHECK(a.Len() == 0);
    signal::Stop(b);
    Say("done");
  });
  EXPECT_TRUE(ChildPassed(r, "done"));
}

// Delivery uses TrySend: a full channel misses the signal, and the other watchers still get it,
// this time and the next.
TEST_P(SignalTest, AFullChannelMissesTheSignalInsteadOfBlockingDelivery) {
  ChildResult r = RunChild([] {
    auto full = MakeChan<int>(1);
    auto open = MakeChan<int>(1);
    CHILD_CHECK(full.TrySend(-1));
    signal::Notify(full, {SIGUSR1});
    signal::Notify(open, {SIGUSR1});
    for (int round = 0; round < 2; ++round) {
      kill(getpid(), SIGUSR1);
      CHILD_CHECK(RecvSignal(open) == SIGUSR1);
    }
    signal::Stop(full);  // after any delivery in progress
    CHILD_CHECK(full.Len() == 1);
    CHILD_CHECK(full.TryRecv() == std::optional<int>(-1));
    signal::Stop(open);
    Say("done");
  });
  EXPECT_TRUE(ChildPassed(r, "done"));
}

TEST_P(SignalTest, NotifyAgainAddsSignals) {
  ChildResult r = RunChild([] {
    auto c = MakeChan<int>(3);
    signal::Notify(c, {SIGUSR1});
    signal::Notify(c, {SIGUSR2, SIGRTMIN + 1});  // 35: a bit past the first 32
    kill(getpid(), SIGUSR2);
    CHILD_CHECK(RecvSignal(c) == SIGUSR2);
    kill(getpid(), SIGUSR1);
    CHILD_CHECK(RecvSignal(c) == SIGUSR1);
    kill(getpid(), SIGRTMIN + 1);
    CHILD_CHECK(RecvSignal(c) == SIGRTMIN + 1);
    signal::Stop(c);
    Say("done");
  });
  EXPECT_TRUE(ChildPassed(r, "done"));
}

TEST_P(SignalTest, StopEndsDeliveryToThatChannelAtOnce) {
  ChildResult r = RunChild([] {
    auto stopped = MakeChan<int>(1);
    auto watching = MakeChan<int>(1);
    signal::Notify(stopped, {SIGUSR1});
    signal::Notify(watching, {SIGUSR1});
    signal::Stop(stopped);
    kill(getpid(), SIGUSR1);
    CHILD_CHECK(RecvSignal(watching) == SIGUSR1);
    signal::Stop(watching);  // after any delivery in progress
    CHILD_CHECK(stopped.Len() == 0);
    Say("done");
  });
  EXPECT_TRUE(ChildPassed(r, "done"));
}

// Once the last channel watching SIGTERM is Stopped, SIGTERM does what it did before Notify: it
// kills the process.
TEST_P(SignalTest, StopOfTheLastWatcherGivesTheDefaultActionBack) {
  ChildResult r = RunChild([] {
    auto c = MakeChan<int>(1);
    signal::Notify(c, {SIGTERM});
    kill(getpid(), SIGTERM);
    CHILD_CHECK(RecvSignal(c) == SIGTERM);
    signal::Stop(c);
    CHILD_CHECK(HandlerOf(SIGTERM) == SIG_DFL);
    Say("stopped");
    raise(SIGTERM);  // this thread: acted on before raise returns
    Sleep(10s);
    Say("survived SIGTERM");
  });
  EXPECT_FALSE(r.exited) << r.output;
  EXPECT_EQ(r.signal, SIGTERM) << r.output;
  EXPECT_NE(r.output.find("stopped"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("check failed"), std::string::npos) << r.output;
}

TEST_P(SignalTest, StopGivesBackTheHandlerThatWasThereBefore) {
  ChildResult r = testing::RunInChild(
      [this] {
        struct sigaction sa {};
        sa.sa_handler = &PreviousHandler;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGUSR1, &sa, nullptr);
        greenline::Run(
            [] {
              auto c = MakeChan<int>(1);
              signal::Notify(c, {SIGUSR1});
              kill(getpid(), SIGUSR1);
              CHILD_CHECK(RecvSignal(c) == SIGUSR1);
              CHILD_CHECK(g_previous_handler_calls.load() == 0);
              signal::Stop(c);
              CHILD_CHECK(HandlerOf(SIGUSR1) == &PreviousHandler);
              raise(SIGUSR1);  // this thread: handled before raise returns
              CHILD_CHECK(g_previous_handler_calls.load() == 1);
              CHILD_CHECK(c.Len() == 0);
            },
            Opts());
        Say("done");
      },
      kChildTimeoutSeconds);
  EXPECT_TRUE(ChildPassed(r, "done"));
}

// The detector must not count a goroutine waiting for a signal as stuck (Go's signal goroutine
// waits in a system call): the signal comes from a plain thread, which the detector cannot see.
TEST_P(SignalTest, TheOnlyGoroutineWaitingForASignalIsNotADeadlock) {
  ChildResult r = RunChild([] {
    auto c = MakeChan<int>(1);
    signal::Notify(c, {SIGUSR1});
    std::thread sender([] {
      // Once the main goroutine waits in Recv and the delivery goroutine in "IO wait", every
      // worker goes idle, and that is when the detector looks.
      while (testing::ParkedFor(WaitReason::kChanReceive) < 1 ||
             testing::ParkedFor(WaitReason::kIOWait) < 1) {
        usleep(1000);
      }
      usleep(50'000);  // margin for the last worker to go idle; not needed for the result
      kill(getpid(), SIGUSR1);
    });
    int got = c.Recv();  // no timer pending: nothing but the signal can end this
    Blocking([&] { sender.join(); });
    CHILD_CHECK(got == SIGUSR1);
    signal::Stop(c);
    Say("done");
  });
  EXPECT_TRUE(ChildPassed(r, "done"));
  EXPECT_EQ(r.output.find("deadlock"), std::string::npos) << r.output;
}

// The delivery goroutine ends with the last Stop, so the detector is back.
TEST_P(SignalTest, AfterTheLastStopADeadlockIsReportedAgain) {
  ChildResult r = RunChild([] {
    auto c = MakeChan<int>(1);
    signal::Notify(c, {SIGUSR1, SIGUSR2});
    signal::Stop(c);
    Say("stopped");
    MakeChan<int>().Recv();  // nothing can end this
  });
  EXPECT_TRUE(IsFatalError(r, "all goroutines are asleep - deadlock!"));
  EXPECT_NE(r.output.find("stopped"), std::string::npos) << r.output;
}

TEST_P(SignalTest, NotifyFromAPlainThread) {
  ChildResult r = RunChild([] {
    auto c = MakeChan<int>(1);
    std::thread notifier([c] {
      signal::Notify(c, {SIGUSR1});
      kill(getpid(), SIGUSR1);
    });
    CHILD_CHECK(RecvSignal(c) == SIGUSR1);
    Blocking([&] { notifier.join(); });
    signal::Stop(c);
    Say("done");
  });
  EXPECT_TRUE(ChildPassed(r, "done"));
}

// The sigwait pattern blocks a signal in the thread that calls Run, and so in every runtime
// thread; Notify still gets it (the delivery goroutine unblocks it on its worker).
TEST_P(SignalTest, ASignalBlockedBeforeRunStillArrives) {
  ChildResult r = testing::RunInChild(
      [this] {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGUSR1);
        pthread_sigmask(SIG_BLOCK, &set, nullptr);
        greenline::Run(
            [] {
              auto c = MakeChan<int>(1);
              signal::Notify(c, {SIGUSR1});
              kill(getpid(), SIGUSR1);
              CHILD_CHECK(RecvSignal(c) == SIGUSR1);
              signal::Stop(c);
            },
            Opts());
        Say("done");
      },
      kChildTimeoutSeconds);
  EXPECT_TRUE(ChildPassed(r, "done"));
}

// What Notify sets up belongs to its Run: each of three Runs gets its signals, left watching
// (no Stop) when it ends, with the delivery goroutine in its read; after each, the default
// disposition is back and no descriptor is left beyond the process's socket pair.
TEST_P(SignalTest, NotifyWorksInSuccessiveRuns) {
  ChildResult r = testing::RunInChild(
      [this] {
        // A first Run makes what the runtime keeps for the life of the process (the SIGQUIT
        // pipe, the net layer's reserve descriptor); when this child is the first to run one
        // (ctest runs each test in a process of its own), they are not there yet.
        greenline::Run([] {}, Opts());
        // The process's socket pair, made by the first Notify, stays; nothing else does.
        const int expected_fds = testing::CountOpenFds() + 2;
        for (int run = 0; run < 3; ++run) {
          greenline::Run(
              [run] {
                auto c = MakeChan<int>(1);
                signal::Notify(c, {SIGUSR1});
                kill(getpid(), SIGUSR1);
                CHILD_CHECK(RecvSignal(c) == SIGUSR1);
                Say("run %d received", run);
              },
              Opts());
          CHILD_CHECK(HandlerOf(SIGUSR1) == SIG_DFL);
          int fds = testing::CountOpenFds();
          if (fds != expected_fds) {
            Say("check failed: %d descriptors after run %d, not %d:\n%s", fds, run, expected_fds,
                testing::DescribeOpenFds().c_str());
          }
        }
        Say("done");
      },
      kChildTimeoutSeconds);
  EXPECT_TRUE(ChildPassed(r, "done"));
  EXPECT_NE(r.output.find("run 2 received"), std::string::npos) << r.output;
}

// ---- Refused -----------------------------------------------------------------------------------

// The message of the RuntimeError `fn` throws, or "" if it throws none.
std::string RefusalOf(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const RuntimeError& e) {
    return e.what();
  }
  return "";
}

TEST(SignalRefusalTest, NotifyRefusesSignalsItCannotOrMustNotTake) {
  struct Case {
    int sig;
    const char* message;
  };
  const Case cases[] = {
      {SIGKILL, "signal.Notify: SIGKILL cannot be caught"},
      {SIGSTOP, "signal.Notify: SIGSTOP cannot be caught"},
      {SIGSEGV, "signal.Notify: SIGSEGV is the runtime's"},
      {SIGBUS, "signal.Notify: SIGBUS is the runtime's"},
      {SIGURG, "signal.Notify: SIGURG is the runtime's"},
      {SIGQUIT, "signal.Notify: SIGQUIT is the runtime's (the goroutine dump)"},
      {32, "signal.Notify: signal 32 is reserved by the C library"},
      {33, "signal.Notify: signal 33 is reserved by the C library"},
      {0, "signal.Notify: signal 0 is not a signal"},
      {65, "signal.Notify: signal 65 is not a signal"},
  };
  greenline::Run([&] {
    auto c = MakeChan<int>(1);
    for (const Case& k : cases) {
      std::string got = RefusalOf([&] { signal::Notify(c, {SIGUSR1, k.sig}); });
      EXPECT_EQ(got.rfind(k.message, 0), 0u) << "signal " << k.sig << ": " << got;
    }
    // Nothing changed: the signal named with the refused one was not taken either.
    EXPECT_EQ(HandlerOf(SIGUSR1), SIG_DFL);
    EXPECT_EQ(RefusalOf([&] { signal::Notify(Chan<int>(), {SIGUSR1}); }),
              "signal.Notify using nil channel");
    EXPECT_NE(RefusalOf([&] { signal::Notify(c, {}); }), "");
    signal::Stop(c);            // watches nothing: nothing to do
    signal::Stop(Chan<int>());  // the nil channel: nothing to do
  });
  EXPECT_EQ(RefusalOf([] { signal::Notify(MakeChan<int>(1), {SIGUSR1}); }),
            "signal.Notify: no runtime running");
  EXPECT_EQ(HandlerOf(SIGUSR1), SIG_DFL);
}

}  // namespace
}  // namespace greenline
