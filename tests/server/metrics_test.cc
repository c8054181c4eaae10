// Tests for server/metrics.h: sharded counters and gauges (cells on cache lines of their own,
// threads spread over shards, sums exact once updates stop, from many threads at once; Gauge::Set
// serialised against other Sets and losing no concurrent Add), the label names, and the Prometheus
// rendering: well-formed text with every family docs/operating.md lists, the counts made here, the
// runtime's goroutine states, workers and poller while a runtime runs, and process metrics that
// describe this process.
#include "server/metrics.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include "greenline/goroutine.h"
#include "greenline/runtime.h"
#include "greenline/wait_group.h"
#include "tests/util/child_process.h"
#include "tests/util/goroutines.h"
#include "tests/util/http.h"
#include "tests/util/net.h"

namespace greenline::server {
namespace {

using namespace std::chrono_literals;
using greenline::testing::ParsePrometheusText;
using greenline::testing::PrometheusText;

static_assert(sizeof(internal::Cell) == 64 && alignof(internal::Cell) == 64,
              "a shard's cell fills one cache line, so neighbours never share it");

TEST(MetricsTest, CounterAndGaugeCountFromOneThread) {
  Counter c;
  EXPECT_EQ(c.Value(), 0u);
  c.Inc();
  c.Add(41);
  EXPECT_EQ(c.Value(), 42u);
  Gauge g;
  g.Inc();
  g.Add(10);
  g.Dec();
  EXPECT_EQ(g.Value(), 10);
  g.Add(-25);
  EXPECT_EQ(g.Value(), -15) << "gauges go below zero";
  g.Set(7);
  EXPECT_EQ(g.Value(), 7);
  g.Set(-3);
  EXPECT_EQ(g.Value(), -3);
}

TEST(MetricsTest, ThreadsTakeDistinctShardsAndKeepThem) {
  size_t n = internal::ShardCount();
  EXPECT_GE(n, 2u);
  EXPECT_EQ(n & (n - 1), 0u) << "a power of two";
  EXPECT_LE(n, 128u);
  size_t mine = internal::ThreadShard();
  EXPECT_EQ(internal::ThreadShard(), mine) << "a thread keeps its shard";
  size_t a = 0, b = 0;
  std::thread([&] { a = internal::ThreadShard(); }).join();
  std::thread([&] { b = internal::ThreadShard(); }).join();
  EXPECT_LT(a, n);
  EXPECT_LT(b, n);
  EXPECT_NE(a, b) << "threads take shards round-robin";
}

TEST(MetricsTest, StressCountersSumEveryIncrementFromManyThreads) {
  constexpr int kThreads = 8;
  constexpr uint64_t kPerThread = 200'000;
  Counter c;
  Gauge g;
  std::vector<std::thread> threads;
  std::atomic<bool> go{false};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      for (uint64_t i = 0; i < kPerThread; ++i) {
        c.Inc();
        g.Add(t % 2 == 0 ? 2 : -1);
      }
    });
  }
  go = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.Value(), kThreads * kPerThread);
  EXPECT_EQ(g.Value(), static_cast<int64_t>(kPerThread) * (kThreads / 2) * (2 - 1));
}

TEST(MetricsTest, StressCountersSumIncrementsFromGoroutinesOnEveryWorker) {
  // Goroutines migrate between workers mid-loop: each increment lands on some thread's shard.
  Counter c;
  constexpr int kGoroutines = 64;
  constexpr int kPerGoroutine = 20'000;
  greenline::Run(
      [&c] {
        WaitGroup done;
        for (int i = 0; i < kGoroutines; ++i) {
          done.Add(1);
          Go([&] {
            for (int j = 0; j < kPerGoroutine; ++j) {
              c.Inc();
              if (j % 1000 == 0) Yield();
            }
            done.Done();
          });
        }
        done.Wait();
      },
      greenline::testing::Procs(2));
  EXPECT_EQ(c.Value(), uint64_t{kGoroutines} * kPerGoroutine);
}

TEST(MetricsTest, StressGaugeSetsRacingEachOtherLeaveOneOfTheirValues) {
  // Set reads the sum and adds the difference: two unserialised Sets could leave the sum of both.
  Gauge g;
  constexpr int kThreads = 4;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&g, t] {
      for (int i = 0; i < 20'000; ++i) g.Set(1000 * (t + 1));
    });
  }
  for (auto& t : threads) t.join();
  int64_t v = g.Value();
  EXPECT_TRUE(v == 1000 || v == 2000 || v == 3000 || v == 4000) << v;
}

TEST(MetricsTest, StressGaugeAddsRacingASetAreNotLost) {
  // Adds racing with Sets count as if just before or just after one of them: once everything
  // stops, the value is the last Set plus some of the adds (none counted twice, none invented).
  Gauge g;
  constexpr int kAdders = 3;
  constexpr int kAdds = 100'000;
  std::atomic<bool> stop{false};
  std::thread setter([&] {
    do {  // at least once: on a busy machine the adders may all be done before this runs
      g.Set(1'000'000);
    } while (!stop.load());
  });
  std::vector<std::thread> adders;
  for (int t = 0; t < kAdders; ++t) {
    adders.emplace_back([&g] {
      for (int i = 0; i < kAdds; ++i) g.Inc();
    });
  }
  for (auto& t : adders) t.join();
  stop = true;
  setter.join();
  int64_t v = g.Value();
  EXPECT_GE(v, 1'000'000);
  EXPECT_LE(v, 1'000'000 + kAdders * kAdds);
  g.Add(5);
  EXPECT_EQ(g.Value(), v + 5);
}

TEST(MetricsTest, LabelNamesAreThePrometheusOnes) {
  EXPECT_EQ(ServiceName(ServiceId::kEcho), "echo");
  EXPECT_EQ(ServiceName(ServiceId::kChat), "chat");
  EXPECT_EQ(ServiceName(ServiceId::kHttp), "http");
  const char* reasons[] = {"eof",  "error",       "idle_timeout", "line_too_long", "too_slow",
                           "quit", "server_full", "panic",        "shutdown"};
  static_assert(sizeof reasons / sizeof reasons[0] ==
                static_cast<size_t>(DisconnectReason::kCount));
  for (size_t i = 0; i < static_cast<size_t>(DisconnectReason::kCount); ++i) {
    EXPECT_EQ(DisconnectReasonName(static_cast<DisconnectReason>(i)), reasons[i]);
  }
  EXPECT_FALSE(BuildVersion().empty());
}

TEST(MetricsTest, TheFormatCheckerCatchesBrokenText) {
  // The checker the rendering tests rely on is not vacuous.
  EXPECT_TRUE(
      ParsePrometheusText("# HELP a x\n# TYPE a gauge\na 1\na{l=\"v\"} 2\n").problems.empty());
  for (const char* bad :
       {"a 1\n", "# HELP a_total x\n# TYPE a_total counter\na_total\n",
        "# HELP a x\n# TYPE a counter\n", "# HELP a x\n# TYPE a gauge\na{l=\"v} 1\n",
        "# HELP a x\n# TYPE a gauge\na 1x\n", "# TYPE a gauge\n",
        "# HELP a x\n# TYPE a gauge\na 1\na 2\n", "# HELP a x\n# TYPE a gauge\na 1"}) {
    EXPECT_FALSE(ParsePrometheusText(bad).problems.empty()) << bad;
  }
}

TEST(MetricsTest, RenderIsWellFormedAndCarriesTheCounts) {
  Metrics m;
  m.connections_total[ServiceId::kEcho].Add(3);
  m.lines_sent_total[ServiceId::kChat].Add(1234567);
  m.panics_recovered_total[ServiceId::kChat].Inc();
  m.disconnects_total[DisconnectReason::kEof].Add(2);
  m.chat_rooms.Set(4);
  m.shutting_down.Set(1);
  std::string text = m.RenderPrometheus();
  PrometheusText p = ParsePrometheusText(text);
  for (const std::string& problem : p.problems) ADD_FAILURE() << problem;
  EXPECT_EQ(p.Value(R"(greenline_connections_total{service="echo"})"), 3);
  EXPECT_EQ(p.Value(R"(greenline_lines_sent_total{service="chat"})"), 1234567);
  EXPECT_EQ(p.Value(R"(greenline_panics_recovered_total{service="chat"})"), 1);
  EXPECT_EQ(p.Value(R"(greenline_disconnects_total{reason="eof"})"), 2);
  EXPECT_EQ(p.Value(R"(greenline_disconnects_total{reason="shutdown"})"), 0);
  EXPECT_EQ(p.Value("greenline_chat_rooms"), 4);
  EXPECT_EQ(p.Value("greenline_shutting_down"), 1);
  // Every service and every reason has its sample, zero or not.
  for (const char* service : {"echo", "chat", "http"}) {
    EXPECT_TRUE(p.Has(std::string("greenline_connections_active{service=\"") + service + "\"}"))
        << service;
  }
  for (size_t i = 0; i < static_cast<size_t>(DisconnectReason::kCount); ++i) {
    std::string reason(DisconnectReasonName(static_cast<DisconnectReason>(i)));
    EXPECT_TRUE(p.Has("greenline_disconnects_total{reason=\"" + reason + "\"}")) << reason;
  }
  EXPECT_EQ(p.Type("greenline_connections_active"), "gauge");
  EXPECT_EQ(p.Type("greenline_connections_total"), "counter");
  EXPECT_EQ(p.Type("process_cpu_seconds_total"), "counter");
  // No runtime runs here: no goroutines, no workers, no poller sample.
  EXPECT_EQ(p.Value(R"(greenline_goroutines{state="running"})"), 0);
  EXPECT_EQ(p.Value("greenline_workers"), 0);
  EXPECT_EQ(text.find("greenline_poller_info{"), std::string::npos) << text;
}

TEST(MetricsTest, ProcessMetricsDescribeThisProcess) {
  std::string text = Metrics().RenderPrometheus();
  PrometheusText p = ParsePrometheusText(text);
  EXPECT_GT(p.Value("process_resident_memory_bytes"), 1 << 20) << text;
  EXPECT_GE(p.Value("process_virtual_memory_bytes"), p.Value("process_resident_memory_bytes"));
  // The metrics code counts its own directory descriptor out, as the test helper does.
  EXPECT_EQ(p.Value("process_open_fds"), greenline::testing::CountOpenFds());
  rlimit rl{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
  EXPECT_EQ(p.Value("process_max_fds"), static_cast<double>(rl.rlim_cur));
  double now = static_cast<double>(std::time(nullptr));
  EXPECT_LE(p.Value("process_start_time_seconds"), now + 1);
  EXPECT_GT(p.Value("process_start_time_seconds"), now - 24 * 3600) << "this test started today";
  // Burn a little CPU: the counter moves.
  double before = p.Value("process_cpu_seconds_total");
  volatile uint64_t sink = 0;
  auto end = std::chrono::steady_clock::now() + 50ms;
  while (std::chrono::steady_clock::now() < end) sink = sink + 1;
  double after =
      ParsePrometheusText(Metrics().RenderPrometheus()).Value("process_cpu_seconds_total");
  EXPECT_GT(after, before);
}

TEST(MetricsTest, GoroutineStatesWorkersAndPollerComeFromTheRuntime) {
  PrometheusText p;
  greenline::Run(
      [&p] {
        WaitGroup release;
        release.Add(1);
        for (int i = 0; i < 3; ++i) Go([&] { release.Wait(); });
        for (int i = 0; i < 2; ++i) Go([] { Sleep(1h); });
        ASSERT_TRUE(greenline::testing::AwaitParked(WaitReason::kSyncWaitGroupWait, 3));
        ASSERT_TRUE(greenline::testing::AwaitParked(WaitReason::kSleep, 2));
        Metrics m;
        p = ParsePrometheusText(Blocking([&m] { return m.RenderPrometheus(); }));
        release.Done();
      },
      greenline::testing::Procs(2));
  for (const std::string& problem : p.problems) ADD_FAILURE() << problem;
  EXPECT_EQ(p.Value(R"(greenline_goroutines{state="blocking"})"), 3);
  // This goroutine (in a blocking call: running-class) and the two sleepers.
  EXPECT_EQ(p.Value(R"(greenline_goroutines{state="running"})"), 3);
  EXPECT_EQ(p.Value("greenline_workers"), 2);
  EXPECT_TRUE(p.Has(R"(greenline_poller_info{kind="io_uring"})") ||
              p.Has(R"(greenline_poller_info{kind="epoll"})"));
}

}  // namespace
}  // namespace greenline::server
