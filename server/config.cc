#include "server/config.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>

namespace greenline::server {

std::optional<std::chrono::nanoseconds> ParseDuration(std::string_view s) {
  using std::chrono::nanoseconds;
  if (s.empty()) return std::nullopt;
  if (s == "0") return nanoseconds(0);
  // A bare number: seconds.
  bool bare = s.find_first_not_of("0123456789.") == std::string_view::npos;
  if (bare) {
    char* end = nullptr;
    std::string copy(s);
    double v = std::strtod(copy.c_str(), &end);
    if (end != copy.c_str() + copy.size() || !std::isfinite(v) || v < 0 || v > 9e9) {
      return std::nullopt;
    }
    return nanoseconds(static_cast<int64_t>(std::llround(v * 1e9)));
  }
  // Go's grammar: one or more "<decimal><unit>", units ns us µs ms s m h.
  double total = 0;
  size_t i = 0;
  while (i < s.size()) {
    size_t start = i;
    while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
    if (i == start) return std::nullopt;
    std::string num(s.substr(start, i - start));
    char* end = nullptr;
    double v = std::strtod(num.c_str(), &end);
    if (end != num.c_str() + num.size()) return std::nullopt;
    size_t ustart = i;
    while (i < s.size() && !((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
    std::string_view unit = s.substr(ustart, i - ustart);
    double scale;
    if (unit == "ns") {
      scale = 1;
    } else if (unit == "us" || unit == "\u00b5s" || unit == "\u03bcs") {
      scale = 1e3;
    } else if (unit == "ms") {
      scale = 1e6;
    } else if (unit == "s") {
      scale = 1e9;
    } else if (unit == "m") {
      scale = 60e9;
    } else if (unit == "h") {
      scale = 3600e9;
    } else {
      return std::nullopt;  // a missing unit too, as in Go ("1h5")
    }
    total += v * scale;
  }
  if (!std::isfinite(total) || total > 9.2e18) return std::nullopt;
  return nanoseconds(static_cast<int64_t>(std::llround(total)));
}

size_t DefaultOutMemory() {
  uint64_t limit = 0;
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) limit = static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
  // cgroup v2, then v1 ("max", or v1's huge number, mean no limit).
  for (const char* path :
       {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    std::ifstream in(path);
    uint64_t v = 0;
    if (in >> v && v > 0 && (limit == 0 || v < limit)) limit = v;
    if (in) break;
  }
  constexpr uint64_t kFloor = 64ull << 20;
  return static_cast<size_t>(std::max(kFloor, limit / 4));
}

std::optional<size_t> ParseSize(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  if (i == 0 || i > 12) return std::nullopt;  // < 10^12 GiB: no overflow
  size_t n = std::stoull(std::string(s.substr(0, i)));
  std::string_view unit = s.substr(i);
  size_t scale = 1;
  if (unit.empty() || unit == "B") {
    scale = 1;
  } else if (unit == "k" || unit == "K" || unit == "KB" || unit == "KiB") {
    scale = size_t{1} << 10;
  } else if (unit == "M" || unit == "MB" || unit == "MiB") {
    scale = size_t{1} << 20;
  } else if (unit == "G" || unit == "GB" || unit == "GiB") {
    scale = size_t{1} << 30;
  } else {
    return std::nullopt;
  }
  return n * scale;
}

std::string FormatDuration(std::chrono::nanoseconds d) {
  int64_t ns = d.count();
  if (ns == 0) return "0s";
  std::string sign = ns < 0 ? "-" : "";
  uint64_t u = ns < 0 ? uint64_t(-(ns + 1)) + 1 : uint64_t(ns);
  auto frac = [](uint64_t v, uint64_t unit) {
    // v / unit with the fraction's trailing zeros dropped.
    std::string out = std::to_string(v / unit);
    uint64_t rem = v % unit;
    if (rem != 0) {
      std::string digits;
      for (uint64_t p = unit / 10; p > 0; p /= 10) {
        digits += char('0' + rem / p);
        rem %= p;
      }
      while (!digits.empty() && digits.back() == '0') digits.pop_back();
      out += "." + digits;
    }
    return out;
  };
  if (u < 1'000) return sign + std::to_string(u) + "ns";
  if (u < 1'000'000) return sign + frac(u, 1'000) + "us";
  if (u < 1'000'000'000) return sign + frac(u, 1'000'000) + "ms";
  uint64_t h = u / 3'600'000'000'000, m = u / 60'000'000'000 % 60;
  std::string out = sign;
  if (h > 0) out += std::to_string(h) + "h";
  if (h > 0 || m > 0) out += std::to_string(m) + "m";
  return out + frac(u % 60'000'000'000, 1'000'000'000) + "s";
}

namespace {

// "off" or "" turns a listener off.
std::string Address(const std::string& v) { return v == "off" ? "" : v; }

}  // namespace

ParseResult ParseCommandLine(int argc, char** argv) {
  ParseResult out;
  Config& c = out.config;
  CLI::App app{
      "greenline: line-protocol echo and chat servers where every connection is a goroutine of\n"
      "greenline's own M:N runtime, with Prometheus metrics and health checks over HTTP.\n"
      "Every flag has an environment variable twin (shown as ENV); a flag on the command line\n"
      "wins over its variable. Durations take Go's syntax (300s, 5m, 1.5h); sizes take KiB/MiB.",
      "greenline"};
  app.set_version_flag("--version", std::string("greenline ") + std::string(kVersion));
  app.get_formatter()->column_width(36);
  // A flag given twice: the last one wins, as with Go's flag package (scripts append overrides).
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);

  std::string idle = FormatDuration(c.idle_timeout);
  std::string grace = FormatDuration(c.shutdown_grace);
  std::string out_queue = "1MiB";
  std::string out_queue_hard;  // empty: 16MiB, or --out-queue if that is more
  std::string out_queue_grace = FormatDuration(c.out_queue_grace);
  std::string out_min_rate = "64KiB";
  std::string out_memory = "auto";
  std::string poller = "auto";
  std::string log_format = "text";

  app.add_option("--echo-addr", c.echo_addr, "echo listener host:port; 'off' turns it off")
      ->envname("GREENLINE_ECHO_ADDR")
      ->capture_default_str();
  app.add_option("--chat-addr", c.chat_addr, "chat listener host:port; 'off' turns it off")
      ->envname("GREENLINE_CHAT_ADDR")
      ->capture_default_str();
  app.add_option("--http-addr", c.http_addr,
                 "HTTP listener (/metrics, /healthz, /debug/goroutines); 'off' turns it off")
      ->envname("GREENLINE_HTTP_ADDR")
      ->capture_default_str();
  app.add_option("--workers", c.workers,
                 "worker threads (goroutines run on at most this many CPUs at once); 0: as the "
                 "runtime decides from GOMAXPROCS, the CPU affinity and the cgroup CPU quota")
      ->envname("GREENLINE_WORKERS")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  app.add_option("--poller", poller,
                 "network poller: auto (io_uring when the kernel and seccomp allow it, else "
                 "epoll), io_uring (or fail), epoll")
      ->envname("GREENLINE_POLLER")
      ->check(CLI::IsMember({"auto", "io_uring", "epoll"}))
      ->capture_default_str();
  app.add_option("--max-conns", c.max_conns,
                 "echo and chat connections at once; more get '! server full'; 0: no limit")
      ->envname("GREENLINE_MAX_CONNS")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--max-line", c.max_line,
                 "longest line in bytes, without its terminator; longer ones close the "
                 "connection with '! line too long'")
      ->envname("GREENLINE_MAX_LINE")
      ->check(CLI::Range(size_t{1}, size_t{1} << 20))
      ->capture_default_str();
  app.add_option("--idle-timeout", idle,
                 "close a connection that sent nothing (not even the rest of a line) for this "
                 "long; 0: never")
      ->envname("GREENLINE_IDLE_TIMEOUT")
      ->capture_default_str();
  app.add_option("--out-queue", out_queue,
                 "chat output one connection may have queued for up to --out-queue-grace: a "
                 "reader over it for longer is cut off as too slow unless it drains at "
                 "--out-min-rate")
      ->envname("GREENLINE_OUT_QUEUE")
      ->capture_default_str();
  app.add_option("--out-queue-grace", out_queue_grace,
                 "how long a chat connection may stay over --out-queue; 0: not at all")
      ->envname("GREENLINE_OUT_QUEUE_GRACE")
      ->capture_default_str();
  app.add_option("--out-min-rate", out_min_rate,
                 "a chat reader over --out-queue that drains at least this many bytes a second is "
                 "never cut off for it")
      ->envname("GREENLINE_OUT_MIN_RATE")
      ->capture_default_str();
  app.add_option("--out-queue-hard", out_queue_hard,
                 "chat output one connection may have queued at all: past it, cut off at once "
                 "[default: 16MiB, or --out-queue if more]")
      ->envname("GREENLINE_OUT_QUEUE_HARD");
  app.add_option("--out-memory", out_memory,
                 "chat output all connections may have queued together; when reached, connections "
                 "that post are not read until it has drained to 3/4; auto: a quarter of the "
                 "cgroup's or machine's memory, at least 64MiB")
      ->envname("GREENLINE_OUT_MEMORY")
      ->capture_default_str();
  app.add_option("--chat-rate", c.chat_rate,
                 "chat flood control: lines per second per connection; 0 turns it off")
      ->envname("GREENLINE_CHAT_RATE")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--chat-burst", c.chat_burst, "chat flood control: burst of lines allowed")
      ->envname("GREENLINE_CHAT_BURST")
      ->check(CLI::Range(1.0, 1e9))
      ->capture_default_str();
  app.add_option("--shutdown-grace", grace,
                 "on SIGTERM/SIGINT, time to flush and close connections before exiting")
      ->envname("GREENLINE_SHUTDOWN_GRACE")
      ->capture_default_str();
  app.add_option("--log-level", c.log_level, "debug, info, warn or error")
      ->envname("GREENLINE_LOG_LEVEL")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}))
      ->capture_default_str();
  app.add_option("--log-format", log_format, "text or json (one JSON object per line)")
      ->envname("GREENLINE_LOG_FORMAT")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  app.add_flag("--enable-debug-commands", c.debug_commands,
               "echo and chat take a '/debug panic' line, chat also '/debug block SECONDS' (shows "
               "panic recovery)")
      ->envname("GREENLINE_ENABLE_DEBUG_COMMANDS");
  app.add_flag("--debug-goroutines-public", c.debug_goroutines_public,
               "serve /debug/goroutines to any peer, not only loopback")
      ->envname("GREENLINE_DEBUG_GOROUTINES_PUBLIC");
  app.add_flag("--status-public", c.status_public,
               "serve the status page (/ and /status.json) to any peer, not only loopback")
      ->envname("GREENLINE_STATUS_PUBLIC");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);  // prints help/version to stdout, errors to stderr
    out.exit_status = rc == 0 ? 0 : 2;
    return out;
  }
  auto usage = [&](const std::string& msg) {
    std::cerr << "greenline: " << msg << "\nRun with --help for more information.\n";
    out.exit_status = 2;
    return out;
  };
  c.echo_addr = Address(c.echo_addr);
  c.chat_addr = Address(c.chat_addr);
  c.http_addr = Address(c.http_addr);
  if (auto d = ParseDuration(idle)) {
    c.idle_timeout = *d;
  } else {
    return usage("--idle-timeout: invalid duration '" + idle + "' (examples: 300s, 5m, 0)");
  }
  if (auto d = ParseDuration(grace)) {
    c.shutdown_grace = *d;
  } else {
    return usage("--shutdown-grace: invalid duration '" + grace + "' (examples: 5s, 500ms)");
  }
  if (auto n = ParseSize(out_queue); n && *n >= 4096) {
    c.out_queue = *n;
  } else {
    return usage("--out-queue: invalid size '" + out_queue + "' (at least 4KiB; e.g. 1MiB)");
  }
  if (out_queue_hard.empty()) {
    c.out_queue_hard = std::max(c.out_queue_hard, c.out_queue);
  } else if (auto n = ParseSize(out_queue_hard); n && *n >= c.out_queue) {
    c.out_queue_hard = *n;
  } else {
    return usage("--out-queue-hard: invalid size '" + out_queue_hard +
                 "' (at least --out-queue; e.g. 16MiB)");
  }
  if (auto d = ParseDuration(out_queue_grace)) {
    c.out_queue_grace = *d;
  } else {
    return usage("--out-queue-grace: invalid duration '" + out_queue_grace +
                 "' (examples: 10s, 500ms, 0)");
  }
  if (auto n = ParseSize(out_min_rate)) {
    c.out_min_rate = *n;
  } else {
    return usage("--out-min-rate: invalid size '" + out_min_rate +
                 "' (bytes a second; e.g. 64KiB)");
  }
  if (out_memory == "auto") {
    c.out_memory = DefaultOutMemory();
  } else if (auto n = ParseSize(out_memory); n && *n >= c.out_queue) {
    c.out_memory = *n;
  } else {
    return usage("--out-memory: invalid size '" + out_memory +
                 "' (auto, or at least --out-queue; e.g. 256MiB)");
  }
  // One line may grow to 3x its bytes once sanitized (each invalid byte becomes U+FFFD), plus
  // "[#room] nick: ": a queue that cannot hold a few of them cuts every reader off.
  if (size_t need = 4 * c.max_line + 1024; c.out_queue < need) {
    return usage("--out-queue " + out_queue + " is too small for --max-line " +
                 std::to_string(c.max_line) + ": at least " + std::to_string(need) + " bytes");
  }
  c.poller = poller == "io_uring" ? PollerKind::kIoUring
             : poller == "epoll"  ? PollerKind::kEpoll
                                  : PollerKind::kAuto;
  c.log_format = log_format == "json" ? LogFormat::kJson : LogFormat::kText;
  if (c.echo_addr.empty() && c.chat_addr.empty() && c.http_addr.empty()) {
    return usage("every listener is off: nothing to serve");
  }
  return out;
}

}  // namespace greenline::server
