// Runtime logging: one line per call, to a sink the embedding program may replace.
//
// The runtime has no logging library of its own (it builds for aarch64 and under sanitizers with no
// dependency but libc). By default lines go to stderr as "greenline: <level>: <message>"; the
// server installs a sink that forwards to spdlog. Messages from the runtime itself start with
// "runtime: ".
//
// May be called from any thread, goroutine or not; not from a signal handler.
#pragma once

#include <string_view>

namespace greenline {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

// Receives each line, without a trailing newline. Must be thread-safe and must not block on a
// goroutine primitive (it may be called from a worker's scheduler context).
using LogSink = void (*)(LogLevel level, std::string_view message);

// Replaces the sink; nullptr restores the default stderr sink. Returns the previous sink.
LogSink SetLogSink(LogSink sink);

// Lines below this level are dropped before formatting. Default: kInfo, or the value of the
// GREENLINE_LOG_LEVEL environment variable (debug, info, warn, error) read at first use.
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);

void Log(LogLevel level, std::string_view message);

// printf-style formatting into a bounded buffer (lines longer than 4 KiB are truncated).
void Logf(LogLevel level, const char* format, ...) __attribute__((format(printf, 2, 3)));

}  // namespace greenline
