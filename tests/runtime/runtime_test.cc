// Tests for greenline/runtime.h: starting and stopping the runtime (Run, Main), how many
// workers it starts, what ends the process and how (exit 2 for panics and stack overflows, as Go),
// the idle cost, and the monitor's handling of a goroutine that does not yield.
#include "greenline/runtime.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "greenline/goroutine.h"
#include "greenline/log.h"
#include "greenline/wait_group.h"
#include "runtime/sched/internal/sched.h"
#include "tests/util/child_process.h"

namespace greenline {
namespace {

using testing::Procs;
using namespace std::chrono_literals;
using testing::RunInChild;

std::mutex g_log_mu;
std::vector<std::string> g_log_lines;

void CaptureSink(LogLevel, std::string_view line) {
  std::lock_guard<std::mutex> lock(g_log_mu);
  g_log_lines.emplace_back(line);
}

TEST(RunTest, MainGoroutineIsGoroutineOne) {
  uint64_t id = 0;
  greenline::Run([&] { id = GoroutineId(); });
  EXPECT_EQ(id, 1u);
  EXPECT_EQ(GoroutineId(), 0u);  // the test thread is not a goroutine
}

TEST(RunTest, RunningOnlyBetweenStartAndStop) {
  EXPECT_FALSE(RuntimeRunning());
  bool inside = false;
  int procs = 0;
  greenline::Run(
      [&] {
        inside = RuntimeRunning();
        procs = MaxProcs();
      },
      Procs(3));
  EXPECT_TRUE(inside);
  EXPECT_EQ(procs, 3);
  EXPECT_FALSE(RuntimeRunning());
  EXPECT_EQ(MaxProcs(), 0);
}

TEST(RunTest, GomaxprocsEnvironmentVariableIsHonoured) {
  setenv("GOMAXPROCS", "3", 1);
  int procs = 0;
  greenline::Run([&] { procs = MaxProcs(); });
  unsetenv("GOMAXPROCS");
  EXPECT_EQ(procs, 3);
}

TEST(RunTest, ReturnsWhenMainReturnsAndAbandonsTheRest) {
  auto start = std::chrono::steady_clock::now();
  std::atomic<bool> started{false};
  greenline::Run([&] {
    Go([&] {
      started = true;
      Sleep(1h);
    });
    while (!started) Yield();
  });
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(RunTest, ReturnsWhileABlockingCallStillRuns) {
  // A goroutine blocked forever in a blocking call (read(2) on a pipe nobody writes) must not keep
  // the program from ending, as it would not in Go; the call finishing later readies nothing.
  auto r = RunInChild(
      [] {
        int fds[2];
        if (pipe(fds) != 0) _exit(3);
        greenline::Run([&] {
          Go([&] {
            char c;
            Blocking([&] { return read(fds[0], &c, 1); });
          });
          Sleep(20ms);
        });
        std::fputs("returned\n", stdout);
        std::fflush(stdout);
        // A second runtime works while the first one's call is still stuck; then unblock it.
        int ran = 0;
        greenline::Run([&] { ran = static_cast<int>(Blocking([] { return 7; })); });
        if (write(fds[1], "x", 1) != 1) _exit(4);
        std::printf("second runtime ran %d\n", ran);
      },
      20);
  ASSERT_TRUE(r.exited) << r.output;
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("returned"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("second runtime ran 7"), std::string::npos) << r.output;
}

TEST(RunTest, TimingYieldingWithNothingElseToRunIsNotALongRun) {
  {
    std::lock_guard<std::mutex> lock(g_log_mu);
    g_log_lines.clear();
  }
  LogSink old = SetLogSink(&CaptureSink);
  greenline::Run(
      [&] {
        auto end = std::chrono::steady_clock::now() + 60ms;
        while (std::chrono::steady_clock::now() < end) Yield();  // alone on its worker
      },
      Procs(1));
  SetLogSink(old);
  std::lock_guard<std::mutex> lock(g_log_mu);
  for (const auto& line : g_log_lines) {
    EXPECT_EQ(line.find("has run for"), std::string::npos) << line;
  }
}

TEST(RunTest, RestartsCleanlyManyTimes) {
  for (int i = 0; i < 30; ++i) {
    std::atomic<int> ran{0};
    greenline::Run(
        [&] {
          WaitGroup wg;
          for (int j = 0; j < 100; ++j) {
            wg.Add(1);
            Go([&] {
              ran.fetch_add(1);
              wg.Done();
            });
          }
          wg.Wait();
        },
        Procs(1 + i % 3));
    ASSERT_EQ(ran.load(), 100) << "round " << i;
  }
}

TEST(RunTest, UnstartedGoroutinesAreDestroyedAtStop) {
  auto token = std::make_shared<int>(7);
  std::weak_ptr<int> weak = token;
  greenline::Run(
      [&] {
        // Queued behind main on a one-worker runtime, never run: main returns first.
        Go([t = std::move(token)] { Sleep(1h); });
      },
      Procs(1));
  EXPECT_TRUE(weak.expired());
}

TEST(RunTest, MainExitsTheProcessWithStatusZero) {
  auto r = RunInChild([] { Main([] { Sleep(1ms); }); });
  ASSERT_TRUE(r.exited) << r.output;
  EXPECT_EQ(r.exit_code, 0);
}

TEST(RunTest, ExceptionEscapingAGoroutineIsAPanicExitTwo) {
  auto r = RunInChild([] {
    greenline::Run([] {
      Go([] { throw std::runtime_error("boom"); });
      Sleep(10s);
    });
  });
  ASSERT_TRUE(r.exited) << r.output;
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("panic: boom"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("[running]"), std::string::npos) << r.output;
}

__attribute__((noinline)) int Recurse(int depth) {
  volatile char frame[512];
  frame[0] = static_cast<char>(depth);
  if (depth < 0) return 0;  // never: depth only grows, but the compiler cannot know
  return Recurse(depth + 1) + frame[0];
}

void ExpectStackOverflowReport(const char* guard_mode) {
  if (testing::UnderQemu()) GTEST_SKIP() << "qemu-user does not fault on guard pages";
  auto r = RunInChild([guard_mode] {
    if (guard_mode != nullptr) setenv("GREENLINE_STACK_GUARD", guard_mode, 1);
    greenline::Run([] {
      WaitGroup wg;
      wg.Add(1);
      Go([&] {
        Recurse(0);
        wg.Done();
      });
      wg.Wait();
    });
  });
  ASSERT_TRUE(r.exited) << "signal " << r.signal << "\n" << r.output;
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("goroutine 2: stack overflow"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Recurse"), std::string::npos) << "backtrace names the function\n"
                                                         << r.output;
}

TEST(RunTest, StackOverflowIsReportedExitTwo) { ExpectStackOverflowReport(nullptr); }

TEST(RunTest, StackOverflowIsReportedWithMprotectGuards) { ExpectStackOverflowReport("mprotect"); }

int* volatile g_null_pointer = nullptr;  // volatile: the compiler cannot see it is null

__attribute__((noinline)) void WriteThrough() {
  *g_null_pointer = 1;
  asm volatile("" ::: "memory");
}

TEST(RunTest, NullDereferenceInAGoroutineIsAFatalErrorNamingIt) {
  // A fault cannot become a recoverable panic in C++: it must end the program clearly, naming the
  // goroutine and where it was, with Go's exit status, never hang.
  auto r = RunInChild([] {
    greenline::Run([] {
      Go([] { WriteThrough(); });
      Sleep(std::chrono::seconds(10));
    });
  });
#if defined(GREENLINE_ASAN)
  // The sanitizers see it first: UBSan reports the null store, ASan's SEGV handler (installed
  // before ours) the fault; either way the program ends, with their report.
  EXPECT_FALSE(r.exited && r.exit_code == 0) << r.output;
  EXPECT_TRUE(r.output.find("AddressSanitizer: SEGV") != std::string::npos ||
              r.output.find("store to null pointer") != std::string::npos)
      << r.output;
#else
  ASSERT_TRUE(r.exited) << "signal " << r.signal << "\n" << r.output;
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("fatal error: unexpected signal in goroutine 2: invalid memory address "
                          "or nil pointer dereference\n[signal SIGSEGV: segmentation violation"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("goroutine 2 [running]:"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("WriteThrough"), std::string::npos) << r.output;
#endif
}

double ProcessCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

TEST(RunTest, TimingIdleRuntimeUsesNoCpu) {
  double cpu = 0;
  greenline::Run(
      [&] {
        // Goroutines asleep, workers parked: the process should sleep too.
        for (int i = 0; i < 1000; ++i) Go([] { Sleep(10s); });
        Sleep(100ms);
        double before = ProcessCpuSeconds();
        Sleep(1s);
        cpu = ProcessCpuSeconds() - before;
      },
      Procs(2));
  RecordProperty("idle_cpu_ms", static_cast<int>(cpu * 1000));
  EXPECT_LT(cpu, 0.05) << "an idle runtime burnt " << cpu * 1000 << " ms of CPU in 1 s";
}

TEST(RunTest, TimingGoroutineThatDoesNotYieldIsReportedOnce) {
  {
    std::lock_guard<std::mutex> lock(g_log_mu);
    g_log_lines.clear();
  }
  LogSink old = SetLogSink(&CaptureSink);
  uint64_t spinner = 0;
  greenline::Run(
      [&] {
        WaitGroup wg;
        wg.Add(1);
        spinner = Go([&] {
          auto end = std::chrono::steady_clock::now() + 100ms;
          while (std::chrono::steady_clock::now() < end) {
          }
          wg.Done();
        });
        wg.Wait();
      },
      Procs(2));
  SetLogSink(old);
  std::lock_guard<std::mutex> lock(g_log_mu);
  int reports = 0;
  std::string needle = "goroutine " + std::to_string(spinner) + " has run for";
  for (const auto& line : g_log_lines) reports += line.find(needle) != std::string::npos;
  EXPECT_EQ(reports, 1);
}

TEST(RunTest, TimingLongRunReportsAreAtMostOneASecondAndCountWhatTheyLeftOut) {
  {
    std::lock_guard<std::mutex> lock(g_log_mu);
    g_log_lines.clear();
  }
  LogSink old = SetLogSink(&CaptureSink);
  auto spin = [](std::chrono::milliseconds d) {
    auto end = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < end) {
    }
  };
  std::vector<uint64_t> ids;
  greenline::Run(
      [&] {
        // Two long runs one after the other: the first is reported, the second (within the same
        // second, and over before it ends) is held back. A third, after the second has passed, is
        // reported and counts the one left out.
        for (auto pause : {0ms, 0ms, 1200ms}) {
          Sleep(pause);
          WaitGroup wg;
          wg.Add(1);
          ids.push_back(Go([&] {
            spin(60ms);
            wg.Done();
          }));
          wg.Wait();
        }
      },
      Procs(2));
  SetLogSink(old);
  std::lock_guard<std::mutex> lock(g_log_mu);
  std::vector<std::string> reports;
  for (const auto& line : g_log_lines) {
    if (line.find(" without yielding") != std::string::npos) reports.push_back(line);
  }
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_NE(reports[0].find("goroutine " + std::to_string(ids[0]) + " has run for"),
            std::string::npos)
      << reports[0];
  EXPECT_NE(reports[1].find("goroutine " + std::to_string(ids[2]) + " has run for"),
            std::string::npos)
      << reports[1];
  EXPECT_NE(reports[1].find("[1 other long runs since the last report not reported]"),
            std::string::npos)
      << reports[1];
}

TEST(RunTest, TimingQueueBehindAStuckGoroutineKeepsMoving) {
  // The spinner queues goroutines on its own worker, then never yields. They must run anyway: an
  // idle worker steals them (woken at once by wakep, or by the monitor).
  std::atomic<int> ran{0};
  bool all_ran = false;
  greenline::Run(
      [&] {
        WaitGroup wg;
        wg.Add(1);
        Go([&] {
          for (int i = 0; i < 10; ++i) Go([&] { ran.fetch_add(1); });
          auto end = std::chrono::steady_clock::now() + 3s;
          while (ran.load() < 10 && std::chrono::steady_clock::now() < end) {
          }
          all_ran = ran.load() == 10;
          wg.Done();
        });
        wg.Wait();
      },
      Procs(2));
  EXPECT_TRUE(all_ran) << ran.load() << " of 10 ran while their worker was stuck";
}

TEST(RunStressTest, MigratingGoroutinesSeeTheirTrueWorker) {
  // A goroutine resumes on whichever worker picked it. CurrentWorker() must name the thread it is
  // really on after every switch, even in an optimised, LTO build where a TLS address could be
  // cached across the switch.
  std::atomic<int> mismatches{0};
  std::atomic<int> migrated{0};
  greenline::Run(
      [&] {
        WaitGroup wg;
        for (int i = 0; i < 64; ++i) {
          wg.Add(1);
          Go([&] {
            int first = -1;
            bool moved = false;
            for (int k = 0; k < 2000; ++k) {
              if (k % 7 == 0) {
                Sleep(std::chrono::microseconds(10));
              } else {
                Yield();
              }
              internal::Worker* w = internal::CurrentWorker();
              if (w->tid.load() != static_cast<pid_t>(gettid())) mismatches.fetch_add(1);
              if (first < 0) first = w->id;
              moved |= w->id != first;
            }
            migrated.fetch_add(moved);
            wg.Done();
          });
        }
        wg.Wait();
      },
      Procs(2));
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_GT(migrated.load(), 0) << "no goroutine ever moved: the test did not test migration";
}

}  // namespace
}  // namespace greenline
