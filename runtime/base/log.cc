#include "greenline/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace greenline {
namespace {

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "?";
}

void StderrSink(LogLevel level, std::string_view message) {
  std::string line = "greenline: ";
  line += LevelName(level);
  line += ": ";
  line += message;
  line += '\n';
  // One write per line so lines from concurrent threads do not interleave.
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

int LevelFromEnv() {
  const char* env = std::getenv("GREENLINE_LOG_LEVEL");
  if (env == nullptr) return static_cast<int>(LogLevel::kInfo);
  if (std::strcmp(env, "debug") == 0) return static_cast<int>(LogLevel::kDebug);
  if (std::strcmp(env, "warn") == 0) return static_cast<int>(LogLevel::kWarn);
  if (std::strcmp(env, "error") == 0) return static_cast<int>(LogLevel::kError);
  return static_cast<int>(LogLevel::kInfo);
}

// Both read on every log call from any thread: relaxed is enough, a new sink or level only has to
// be seen eventually, and the sink itself is a plain function.
std::atomic<LogSink> g_sink{&StderrSink};
std::atomic<int> g_level{-1};  // -1: not read from the environment yet

}  // namespace

LogSink SetLogSink(LogSink sink) {
  return g_sink.exchange(sink != nullptr ? sink : &StderrSink, std::memory_order_acq_rel);
}

void SetLogLevel(LogLevel level) {
  g_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

bool LogEnabled(LogLevel level) {
  int current = g_level.load(std::memory_order_relaxed);
  if (current < 0) {
    int from_env = LevelFromEnv();
    g_level.compare_exchange_strong(current, from_env, std::memory_order_relaxed);
    current = g_level.load(std::memory_order_relaxed);
  }
  return static_cast<int>(level) >= current;
}

void Log(LogLevel level, std::string_view message) {
  if (!LogEnabled(level)) return;
  g_sink.load(std::memory_order_acquire)(level, message);
}

void Logf(LogLevel level, const char* format, ...) {
  if (!LogEnabled(level)) return;
  char buf[4096];
  va_list args;
  va_start(args, format);
  int n = std::vsnprintf(buf, sizeof buf, format, args);
  va_end(args);
  if (n < 0) return;
  size_t len = static_cast<size_t>(n) < sizeof buf ? static_cast<size_t>(n) : sizeof buf - 1;
  g_sink.load(std::memory_order_acquire)(level, std::string_view(buf, len));
}

}  // namespace greenline
