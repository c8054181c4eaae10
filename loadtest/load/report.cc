// report.cc: Report (wrk-style text and JSON) and WindowProbe (the /proc and rusage samples at the
// measured window's edges). See report.h for what is measured and why from where.
//
// One source of truth: PrintText renders ToJson()'s object, so the text and the JSON can never
// disagree about a figure (and a reader of the JSON finds the numbers the text showed).
//
// CPU accounting. /proc/stat counts in USER_HZ ticks (sysconf(_SC_CLK_TCK), 100 on Linux): over a
// 10 s window that is 1000 ticks per CPU, so busy fractions are good to 0.1%, and per-line CPU is
// busy ticks / lines. /proc/PID/stat utime + stime is the process-only figure: it misses softirq
// work done on the server's CPU on behalf of its sockets (loopback TCP receive runs there), which
// is why the per-CPU figure is the one the benchmark compares and the process one a cross check.
#include "loadtest/load/report.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cinttypes>
#include <cmath>
#include <string>

namespace greenline::load {

namespace {

double RusageSeconds() {
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  auto sec = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

long ClockTicks() {
  long t = sysconf(_SC_CLK_TCK);
  return t > 0 ? t : 100;
}

// A JSON number, or null for NaN/inf (JSON has neither).
nlohmann::json Num(double v) {
  if (!std::isfinite(v)) return nullptr;
  return v;
}

double Us(double ns) { return ns / 1000.0; }

std::string Fmt(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

std::string FormatJsonScalar(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%g", v.get<double>());
    return buf;
  }
  return v.dump();
}

}  // namespace

void WindowProbe::Start() {
  cpu_start_ = ReadCpuSample(stat_cpu_);
  proc_start_ = ReadProcessJiffies(server_pid_);
  client_cpu_start_ = RusageSeconds();
}

void WindowProbe::Stop() {
  client_cpu_end_ = RusageSeconds();
  cpu_end_ = ReadCpuSample(stat_cpu_);
  proc_end_ = ReadProcessJiffies(server_pid_);
  rss_end_ = ReadRss(server_pid_);
}

void WindowProbe::AddTo(nlohmann::json& out, uint64_t units, double window_seconds) const {
  const double ns_per_tick = 1e9 / static_cast<double>(ClockTicks());
  const double client_seconds = client_cpu_end_ - client_cpu_start_;
  out["client_cpu"] = {
      {"seconds", client_seconds},
      {"utilization", window_seconds > 0 ? Num(client_seconds / window_seconds) : nullptr}};
  if (stat_cpu_ >= 0) {
    nlohmann::json s = {{"cpu", stat_cpu_}, {"clk_tck", ClockTicks()}};
    if (cpu_start_ && cpu_end_) {
      uint64_t busy = cpu_end_->busy_jiffies - cpu_start_->busy_jiffies;
      uint64_t idle = cpu_end_->idle_jiffies - cpu_start_->idle_jiffies;
      // Clamped: the counters are sampled one by one, so user may overtake busy by a tick.
      uint64_t user = std::min(busy, cpu_end_->user_jiffies - cpu_start_->user_jiffies);
      s["busy_jiffies"] = busy;
      s["user_jiffies"] = user;
      s["idle_jiffies"] = idle;
      s["steal_jiffies"] = cpu_end_->steal_jiffies - cpu_start_->steal_jiffies;
      s["utilization"] = busy + idle > 0 ? Num(static_cast<double>(busy) / (busy + idle)) : nullptr;
      double per = units > 0 ? busy * ns_per_tick / units : NAN;
      s["ns_per_unit"] = Num(per);
      s["ns_per_1000_units"] = Num(per * 1000);
      // The kernel's share (system, irq, softirq): mostly the sends and the network stack, and
      // the server's own polls and wake-ups.
      s["kernel_ns_per_unit"] = Num(units > 0 ? (busy - user) * ns_per_tick / units : NAN);
    } else {
      s["error"] = "cannot read cpu" + std::to_string(stat_cpu_) + " in /proc/stat";
    }
    out["server_cpu"] = s;
  }
  if (server_pid_ > 0) {
    nlohmann::json s = {{"pid", server_pid_}};
    if (proc_start_ && proc_end_) {
      uint64_t jiffies = proc_end_->Total() - proc_start_->Total();
      // Both parts only grow (the kernel's cputime_adjust keeps utime and stime monotonic).
      uint64_t user = proc_end_->user - proc_start_->user;
      s["process_jiffies"] = jiffies;
      s["process_user_jiffies"] = user;
      s["process_ns_per_unit"] = units > 0 ? Num(jiffies * ns_per_tick / units) : nullptr;
      s["user_ns_per_unit"] = units > 0 ? Num(user * ns_per_tick / units) : nullptr;
    } else {
      s["process_jiffies"] = nullptr;
      s["process_user_jiffies"] = nullptr;
      s["process_ns_per_unit"] = nullptr;
      s["user_ns_per_unit"] = nullptr;
    }
    s["rss_bytes"] = rss_end_ ? nlohmann::json(rss_end_->rss_bytes) : nlohmann::json(nullptr);
    s["peak_rss_bytes"] = rss_end_ ? nlohmann::json(rss_end_->peak_bytes) : nlohmann::json(nullptr);
    if (!proc_end_ || !rss_end_) s["error"] = "process " + std::to_string(server_pid_) + " is gone";
    out["server"] = s;
  }
}

uint64_t Report::ErrorCount() const {
  uint64_t n = 0;
  for (const auto& [kind, count] : errors) n += count;
  return n;
}

nlohmann::json Report::ToJson() const {
  nlohmann::json j;
  j["tool"] = "greenline-load";
  j["mode"] = mode;
  j["ok"] = Ok();
  j["settings"] = settings.is_null() ? nlohmann::json::object() : settings;
  j["window_seconds"] = window_seconds;
  j["throughput"] = {{"unit", rate_unit},
                     {"count", units},
                     {"per_second", window_seconds > 0 ? Num(units / window_seconds) : nullptr}};
  j["latency_us"] = {{"count", latency.Count()},
                     {"mean", Us(latency.Mean())},
                     {"stdev", Us(latency.Stdev())},
                     {"min", Us(latency.Min())},
                     {"p50", Us(latency.ValueAtPercentile(50))},
                     {"p90", Us(latency.ValueAtPercentile(90))},
                     {"p99", Us(latency.ValueAtPercentile(99))},
                     {"p999", Us(latency.ValueAtPercentile(99.9))},
                     {"max", Us(latency.Max())}};
  j["errors"] = nlohmann::json::object();
  for (const auto& [kind, count] : errors) j["errors"][kind] = count;
  j["errors_total"] = ErrorCount();
  if (probe != nullptr) probe->AddTo(j, units, window_seconds);
  j["extra"] = extra.is_null() ? nlohmann::json::object() : extra;
  return j;
}

void Report::PrintText(std::FILE* out) const {
  const nlohmann::json j = ToJson();
  std::string unit = rate_unit.empty() ? "units" : rate_unit;
  // "per line", "per delivery": the unit's singular.
  std::string one = unit;
  if (one.size() > 3 && one.compare(one.size() - 3, 3, "ies") == 0) {
    one.replace(one.size() - 3, 3, "y");
  } else if (one.size() > 1 && one.back() == 's') {
    one.pop_back();
  }

  std::fprintf(out, "greenline-load %s", mode.c_str());
  if (settings.contains("host") && settings.contains("port")) {
    std::fprintf(out, " @ %s:%s", FormatJsonScalar(settings["host"]).c_str(),
                 FormatJsonScalar(settings["port"]).c_str());
  }
  std::fprintf(out, "\n ");
  for (const auto& [key, value] : j["settings"].items()) {
    if (key == "host" || key == "port") continue;
    std::fprintf(out, " %s=%s", key.c_str(), FormatJsonScalar(value).c_str());
  }
  std::fprintf(out, "\n");

  if (latency.Count() == 0) {
    std::fprintf(out, "  Latency: no samples\n");
  } else {
    std::fprintf(out, "  %-10s %10s %10s %10s %10s\n", "", "Avg", "Stdev", "Min", "Max");
    std::fprintf(out, "  %-10s %10s %10s %10s %10s\n", "Latency",
                 FormatNanos(latency.Mean()).c_str(), FormatNanos(latency.Stdev()).c_str(),
                 FormatNanos(latency.Min()).c_str(), FormatNanos(latency.Max()).c_str());
    std::fprintf(out, "  Latency Distribution\n");
    const std::pair<const char*, double> pcts[] = {
        {"50%", 50}, {"90%", 90}, {"99%", 99}, {"99.9%", 99.9}};
    for (const auto& [label, p] : pcts) {
      std::fprintf(out, "  %7s %10s\n", label,
                   FormatNanos(static_cast<double>(latency.ValueAtPercentile(p))).c_str());
    }
    if (latency.Clamped() > 0) {
      std::fprintf(out, "  (%" PRIu64 " latencies above the histogram's range were clamped)\n",
                   latency.Clamped());
    }
  }
  std::fprintf(out, "  %" PRIu64 " %s in %.2fs\n", units, unit.c_str(), window_seconds);
  std::string per_sec = unit;
  if (!per_sec.empty()) per_sec[0] = static_cast<char>(std::toupper(per_sec[0]));
  std::fprintf(out, "%s/sec: %.2f\n", per_sec.c_str(),
               window_seconds > 0 ? units / window_seconds : 0.0);

  if (ErrorCount() == 0) {
    std::fprintf(out, "Errors: none\n");
  } else {
    std::fprintf(out, "Errors: %" PRIu64 "\n", ErrorCount());
    for (const auto& [kind, count] : errors) {
      if (count > 0) std::fprintf(out, "  %-20s %" PRIu64 "\n", kind.c_str(), count);
    }
  }

  if (j.contains("server_cpu")) {
    const auto& s = j["server_cpu"];
    if (s.contains("error")) {
      std::fprintf(out, "Server CPU: %s\n", s["error"].get<std::string>().c_str());
    } else {
      std::fprintf(out, "Server CPU %d: %.1f%% busy, steal %" PRIu64 " ticks", s["cpu"].get<int>(),
                   s["utilization"].is_null() ? 0.0 : 100 * s["utilization"].get<double>(),
                   s["steal_jiffies"].get<uint64_t>());
      if (!s["ns_per_unit"].is_null()) {
        std::fprintf(out, ", %s per %s (%s per 1000)",
                     FormatNanos(s["ns_per_unit"].get<double>()).c_str(), one.c_str(),
                     FormatNanos(s["ns_per_1000_units"].get<double>()).c_str());
        if (!s["kernel_ns_per_unit"].is_null()) {
          std::fprintf(out, ", of which kernel %s",
                       FormatNanos(s["kernel_ns_per_unit"].get<double>()).c_str());
        }
      }
      std::fprintf(out, "\n");
    }
  }
  if (j.contains("server")) {
    const auto& s = j["server"];
    std::fprintf(out, "Server pid %d:", s["pid"].get<int>());
    if (!s["process_ns_per_unit"].is_null()) {
      std::fprintf(out, " process CPU %s per %s",
                   FormatNanos(s["process_ns_per_unit"].get<double>()).c_str(), one.c_str());
      if (!s["user_ns_per_unit"].is_null()) {
        std::fprintf(out, " (user space %s)",
                     FormatNanos(s["user_ns_per_unit"].get<double>()).c_str());
      }
      std::fprintf(out, ",");
    }
    if (!s["rss_bytes"].is_null()) {
      std::fprintf(out, " RSS %sB (peak %sB)", FormatCount(s["rss_bytes"].get<double>()).c_str(),
                   FormatCount(s["peak_rss_bytes"].get<double>()).c_str());
    }
    if (s.contains("error")) std::fprintf(out, " %s", s["error"].get<std::string>().c_str());
    std::fprintf(out, "\n");
  }
  if (j.contains("client_cpu")) {
    const auto& c = j["client_cpu"];
    std::fprintf(out, "Client CPU: %.2fs", c["seconds"].get<double>());
    if (!c["utilization"].is_null()) {
      std::fprintf(out, " (%.1f%% of one core)", 100 * c["utilization"].get<double>());
    }
    std::fprintf(out, "\n");
  }
  if (!j["extra"].empty()) {
    std::fprintf(out, "Extra:");
    for (const auto& [key, value] : j["extra"].items()) {
      std::fprintf(out, " %s=%s", key.c_str(), FormatJsonScalar(value).c_str());
    }
    std::fprintf(out, "\n");
  }
  std::fflush(out);
}

std::string FormatNanos(double ns) {
  if (!std::isfinite(ns)) return "-";
  double a = std::fabs(ns);
  if (a < 1e3) return Fmt("%.0fns", ns);
  if (a < 1e6) return Fmt("%.2fus", ns / 1e3);
  if (a < 1e9) return Fmt("%.2fms", ns / 1e6);
  return Fmt("%.2fs", ns / 1e9);
}

std::string FormatCount(double n) {
  if (!std::isfinite(n)) return "-";
  double a = std::fabs(n);
  if (a < 1e3) return Fmt("%.0f", n);
  if (a < 1e6) return Fmt("%.2fk", n / 1e3);
  if (a < 1e9) return Fmt("%.2fM", n / 1e6);
  return Fmt("%.2fG", n / 1e9);
}

}  // namespace greenline::load
