// report.h: what every greenline-load mode reports, as a wrk-style text block and as JSON, plus
// the machine-side measurements around the measured window (server CPU from /proc/stat, the
// client's own CPU, the server's RSS).
//
// A mode fills one Report: its name and settings, the measured window's length, its throughput
// (one count of a named unit: "lines", "deliveries", "connections"), one latency Histogram
// (nanoseconds), errors by kind, and mode-specific figures (`extra`). PrintText writes the human
// report to a FILE*; ToJson gives the same as one JSON object (schema in loadtest/load/README.md).
//
// WindowProbe brackets the measured window: Start() at the window's opening edge, Stop() at its
// closing edge, both called from the thread that opens and closes the window, so the CPU samples
// bracket exactly the work counted (a script sampling in parallel could not align them better than
// its own wake-ups). It reads:
//   - /proc/stat's `cpuN` line for --stat-cpu N (the server's pinned CPU): busy = user + nice +
//     system + irq + softirq (guest time is inside user and nice already), split into user
//     (user + nice) and the kernel's rest, idle = idle + iowait, steal apart (the hypervisor ran
//     someone else: not work this CPU did);
//   - the client's own CPU time, getrusage(RUSAGE_SELF), user + system;
//   - for --server-pid P: /proc/P/stat utime and stime over the window (the process-only cross
//     check, and utime alone: the server's user-space CPU), and at Stop() /proc/P/status VmRSS
//     and VmHWM (the peak RSS).
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "loadtest/load/histogram.h"
#include "loadtest/load/proc_stat.h"

namespace greenline::load {

class WindowProbe {
 public:
  // stat_cpu < 0: no /proc/stat sampling; server_pid <= 0: no process sampling.
  WindowProbe(int stat_cpu, int server_pid) : stat_cpu_(stat_cpu), server_pid_(server_pid) {}
  void Start();
  void Stop();
  // Adds the "client_cpu" object to `out`, and "server_cpu" (stat_cpu >= 0) and "server"
  // (server_pid > 0) when asked for (see README.md); `units` is the count per which CPU time is
  // divided (ns_per_unit).
  void AddTo(nlohmann::json& out, uint64_t units, double window_seconds) const;

 private:
  int stat_cpu_;
  int server_pid_;
  std::optional<CpuSample> cpu_start_, cpu_end_;
  std::optional<ProcessJiffies> proc_start_, proc_end_;
  std::optional<RssSample> rss_end_;
  double client_cpu_start_ = 0, client_cpu_end_ = 0;
};

struct Report {
  std::string mode;           // "echo", "chat", "idle"
  nlohmann::json settings;    // the mode's flags as in effect (resolved port, threads used, ...)
  double window_seconds = 0;  // measured window: --duration as scheduled (echo, chat), or the
                              // connect phase as timed on the steady clock (idle)
  std::string rate_unit;      // what throughput counts: "lines", "deliveries", "connections"
  uint64_t units = 0;         // how many of them completed in the window
  Histogram latency;          // nanoseconds
  std::map<std::string, uint64_t> errors;  // kind -> count ("mismatch", "closed early", ...)
  nlohmann::json extra = nlohmann::json::object();  // mode-specific figures
  const WindowProbe* probe = nullptr;

  uint64_t ErrorCount() const;
  bool Ok() const { return ErrorCount() == 0; }
  // The wrk-style report.
  void PrintText(std::FILE* out) const;
  nlohmann::json ToJson() const;
};

// "12.3us", "4.56ms", "1.20s": latencies for humans.
std::string FormatNanos(double ns);
// "12.35k", "1.23M": counts for humans.
std::string FormatCount(double n);

}  // namespace greenline::load
