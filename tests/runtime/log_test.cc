// Checks greenline/log.h: a custom sink receives each line, without a newline, with its level;
// SetLogLevel drops lines below the level (and LogEnabled agrees); Logf formats printf-style and
// truncates lines longer than 4 KiB (even 100 KiB ones) without crashing, while Log passes its
// message through untouched; SetLogSink returns the previous sink and nullptr restores the default,
// which writes "greenline: <level>: <message>\n" to stderr (captured through a pipe); and, as a
// stress test that also runs under TSan, four threads log while another swaps sinks, losing no
// line.
#include "greenline/log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace greenline {
namespace {

struct Line {
  LogLevel level;
  std::string message;
};

std::mutex g_mu;
std::vector<Line> g_lines;  // guarded by g_mu

void CaptureSink(LogLevel level, std::string_view message) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_lines.push_back({level, std::string(message)});
}

void OtherSink(LogLevel, std::string_view) {}

constexpr LogLevel kLevels[] = {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn,
                                LogLevel::kError};

// Installs CaptureSink at level kDebug and puts back the previous sink and level afterwards.
class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    previous_level_ = LogLevel::kError;
    for (LogLevel level : kLevels) {
      if (LogEnabled(level)) {
        previous_level_ = level;
        break;
      }
    }
    previous_sink_ = SetLogSink(&CaptureSink);
    SetLogLevel(LogLevel::kDebug);
    Take();
  }
  void TearDown() override {
    SetLogSink(previous_sink_);
    SetLogLevel(previous_level_);
  }

  // Returns and clears the captured lines.
  static std::vector<Line> Take() {
    std::lock_guard<std::mutex> lock(g_mu);
    std::vector<Line> lines;
    lines.swap(g_lines);
    return lines;
  }

  LogSink previous_sink_ = nullptr;
  LogLevel previous_level_ = LogLevel::kInfo;
};

// Runs `body` with stderr redirected into a pipe and returns what was written to it.
template <typename Body>
std::string CaptureStderr(Body body) {
  std::fflush(stderr);
  int fds[2];
  if (pipe(fds) != 0) return "pipe failed";
  const int saved = dup(STDERR_FILENO);
  dup2(fds[1], STDERR_FILENO);
  close(fds[1]);
  body();
  dup2(saved, STDERR_FILENO);
  close(saved);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  return out;
}

TEST_F(LogTest, CustomSinkReceivesEachLineWithItsLevel) {
  Log(LogLevel::kDebug, "first");
  Log(LogLevel::kInfo, "second");
  Log(LogLevel::kWarn, "third");
  Log(LogLevel::kError, "runtime: fourth");
  const std::vector<Line> lines = Take();
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0].level, LogLevel::kDebug);
  EXPECT_EQ(lines[0].message, "first");
  EXPECT_EQ(lines[1].level, LogLevel::kInfo);
  EXPECT_EQ(lines[1].message, "second");
  EXPECT_EQ(lines[2].level, LogLevel::kWarn);
  EXPECT_EQ(lines[2].message, "third");
  EXPECT_EQ(lines[3].level, LogLevel::kError);
  EXPECT_EQ(lines[3].message, "runtime: fourth");
}

TEST_F(LogTest, LogfFormatsPrintfStyle) {
  Logf(LogLevel::kWarn, "%s=%d %.2f %zu %%", "answer", 42, 1.5, size_t{7});
  Logf(LogLevel::kInfo, "no arguments");
  const std::vector<Line> lines = Take();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].level, LogLevel::kWarn);
  EXPECT_EQ(lines[0].message, "answer=42 1.50 7 %");
  EXPECT_EQ(lines[1].message, "no arguments");
}

TEST_F(LogTest, LogPassesItsMessageThroughUntouched) {
  const std::string long_message(10'000, 'L');
  Log(LogLevel::kInfo, "100% %s %d");  // not a format
  Log(LogLevel::kInfo, long_message);
  Log(LogLevel::kInfo, "");
  Log(LogLevel::kInfo, std::string_view("a\0b", 3));
  const std::vector<Line> lines = Take();
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0].message, "100% %s %d");
  EXPECT_EQ(lines[1].message, long_message);
  EXPECT_EQ(lines[2].message, "");
  EXPECT_EQ(lines[3].message, std::string("a\0b", 3));
}

TEST_F(LogTest, SetLogLevelDropsLinesBelowIt) {
  for (LogLevel threshold : kLevels) {
    SCOPED_TRACE(static_cast<int>(threshold));
    SetLogLevel(threshold);
    for (LogLevel level : kLevels) {
      EXPECT_EQ(LogEnabled(level), level >= threshold);
      Log(level, "plain");
      Logf(level, "formatted %d", static_cast<int>(level));
    }
    const std::vector<Line> lines = Take();
    const size_t expected = 2 * (4 - static_cast<size_t>(threshold));
    ASSERT_EQ(lines.size(), expected);
    for (const Line& line : lines) EXPECT_GE(line.level, threshold);
  }
}

TEST_F(LogTest, LogfTruncatesLinesLongerThanFourKiB) {
  const std::string body(10'000, 'x');
  Logf(LogLevel::kError, "head:%s:tail", body.c_str());
  const std::string exact(4000, 'y');
  Logf(LogLevel::kError, "%s", exact.c_str());
  const std::string huge(100'000, 'z');
  Logf(LogLevel::kError, "%s%s", huge.c_str(), huge.c_str());
  const std::vector<Line> lines = Take();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_GE(lines[0].message.size(), 4000u);
  EXPECT_LE(lines[0].message.size(), 4096u);
  EXPECT_EQ(lines[0].message.rfind("head:xxxx", 0), 0u);
  EXPECT_EQ(lines[0].message.find_first_not_of('x', 5), std::string::npos)
      << "the truncated line must hold only what was formatted, no garbage";
  EXPECT_EQ(lines[1].message, exact) << "a line under 4 KiB is not truncated";
  EXPECT_LE(lines[2].message.size(), 4096u);
  EXPECT_EQ(lines[2].message.find_first_not_of('z'), std::string::npos);
}

TEST_F(LogTest, SetLogSinkReturnsThePreviousSinkAndNullRestoresTheDefault) {
  EXPECT_EQ(SetLogSink(&OtherSink), &CaptureSink);
  EXPECT_EQ(SetLogSink(nullptr), &OtherSink);
  const std::string written = CaptureStderr([] {
    Log(LogLevel::kDebug, "one");
    Log(LogLevel::kInfo, "two");
    Logf(LogLevel::kWarn, "three %d", 3);
    Log(LogLevel::kError, "runtime: four");
  });
  EXPECT_EQ(written,
            "greenline: debug: one\n"
            "greenline: info: two\n"
            "greenline: warn: three 3\n"
            "greenline: error: runtime: four\n");
  EXPECT_TRUE(Take().empty()) << "the replaced sink still got lines";

  // The default sink is a real sink: putting it back by the returned pointer works too.
  const LogSink default_sink = SetLogSink(&CaptureSink);
  ASSERT_NE(default_sink, nullptr);
  EXPECT_NE(default_sink, &CaptureSink);
  EXPECT_EQ(SetLogSink(default_sink), &CaptureSink);
  EXPECT_EQ(CaptureStderr([] { Log(LogLevel::kWarn, "again"); }), "greenline: warn: again\n");
  EXPECT_EQ(SetLogSink(&CaptureSink), default_sink);
}

std::atomic<int64_t> g_count_a{0}, g_count_b{0};
void CountA(LogLevel, std::string_view) { g_count_a.fetch_add(1, std::memory_order_relaxed); }
void CountB(LogLevel, std::string_view) { g_count_b.fetch_add(1, std::memory_order_relaxed); }

TEST_F(LogTest, StressConcurrentLoggersWhileSinksChange) {
  constexpr int kThreads = 4, kLines = 5000, kSwaps = 2000;
  g_count_a = 0;
  g_count_b = 0;
  SetLogSink(&CountA);
  std::atomic<bool> go{false};
  std::vector<std::thread> loggers;
  for (int t = 0; t < kThreads; ++t) {
    loggers.emplace_back([&go, t] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      for (int i = 0; i < kLines; ++i) {
        if (i % 2 == 0) {
          Log(LogLevel::kInfo, "line");
        } else {
          Logf(LogLevel::kInfo, "thread %d line %d", t, i);
        }
      }
    });
  }
  std::thread swapper([&go] {
    go.store(true, std::memory_order_release);
    for (int i = 0; i < kSwaps; ++i) SetLogSink(i % 2 == 0 ? &CountB : &CountA);
  });
  swapper.join();
  for (auto& t : loggers) t.join();
  EXPECT_EQ(g_count_a.load() + g_count_b.load(), int64_t{kThreads} * kLines);
  SetLogSink(&CaptureSink);
}

}  // namespace
}  // namespace greenline
