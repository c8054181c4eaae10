// The greenline server's configuration: command-line flags, each with an environment variable
// twin for containers (GREENLINE_ECHO_ADDR, ...). A flag given on the command line wins over its
// environment variable, which wins over the default. `greenline --help` lists them all.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "greenline/runtime.h"

namespace greenline::server {

enum class LogFormat { kText, kJson };

struct Config {
  // Listen addresses, "host:port" as net::Listen takes them ("0.0.0.0:7007", "[::]:7007"). Empty
  // (or "off" on the command line) turns that listener off.
  std::string echo_addr = "0.0.0.0:7007";
  std::string chat_addr = "0.0.0.0:7070";
  std::string http_addr = "0.0.0.0:9070";

  int workers = 0;  // 0: as the runtime decides (GOMAXPROCS, affinity, cgroup quota)
  PollerKind poller = PollerKind::kAuto;

  int64_t max_conns = 100'000;  // echo and chat connections together; 0: no limit
  size_t max_line = 4096;       // bytes per line, without its terminator
  std::chrono::nanoseconds idle_timeout = std::chrono::seconds(300);  // 0: none
  // Chat output (server/outbox.h): per connection a soft limit that may last --out-queue-grace
  // unless the reader drains at --out-min-rate, and a hard one; for all connections a budget.
  size_t out_queue = 1 << 20;
  size_t out_queue_hard = 16 << 20;
  std::chrono::nanoseconds out_queue_grace = std::chrono::seconds(10);
  size_t out_min_rate = 64 << 10;  // bytes per second
  size_t out_memory = 0;           // 0 until parsed: DefaultOutMemory() unless given
  double chat_rate = 20;           // lines per second per chat connection; 0: no flood control
  double chat_burst = 40;
  std::chrono::nanoseconds shutdown_grace = std::chrono::seconds(5);

  std::string log_level = "info";  // debug, info, warn, error
  LogFormat log_format = LogFormat::kText;

  bool debug_commands = false;           // echo's and chat's /debug panic, chat's /debug block
  bool debug_goroutines_public = false;  // /debug/goroutines to non-loopback peers too
  bool status_public = false;            // the status page to non-loopback peers too
};

// Parses argv (and the environment). Returns the configuration, or an exit status: 0 after
// --help or --version (printed to stdout), 2 after a usage error (printed to stderr with a hint).
struct ParseResult {
  Config config;
  std::optional<int> exit_status;
};
ParseResult ParseCommandLine(int argc, char** argv);

// Go's time.ParseDuration: "300s", "1.5h", "2m30s", "250ms", "0". Plain numbers are seconds (an
// environment variable set to "300" means what its author meant). nullopt when malformed or
// negative.
std::optional<std::chrono::nanoseconds> ParseDuration(std::string_view text);

// Byte sizes: "1048576", "64KiB", "1MiB", "1M" (powers of two; k/K/KB/KiB alike). nullopt when
// malformed.
std::optional<size_t> ParseSize(std::string_view text);

// --out-memory's default: a quarter of the memory this process may use (the cgroup's memory.max,
// or the machine's RAM when lower or there is no limit), at least 64 MiB.
size_t DefaultOutMemory();

// "1.5s", "300ms", "5m0s": the shortest exact form, as Go's Duration.String() prints.
std::string FormatDuration(std::chrono::nanoseconds d);

inline constexpr std::string_view kVersion = GREENLINE_VERSION;

}  // namespace greenline::server
