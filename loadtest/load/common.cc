// common.cc: what greenline-load's modes share (modes.h): the common flags, Emit, the live
// progress line, the hard stop, the thread count.
//
// Flags before or after the mode's name: the common flags live on the top-level app and the app
// is set to fall through (CLI11's fallthrough(), inherited by each subcommand created after it),
// so `greenline-load --duration 2 echo` and `greenline-load echo --duration 2` mean the same.
// That needs AddCommonOptions to run before the Add*Command functions (main.cc does).
//
// Progress runs on its own thread, sleeping on a condition variable with a deadline on the next
// whole second since start: Stop() wakes it at once (a run never waits up to a second for its
// progress line), and the ticks do not drift with the time the line takes to build. A terminal
// gets one line rewritten in place ("\r", the line, ESC[K to clear what a longer previous line
// left); a pipe or file gets one plain line per tick, which is what a log wants.
#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "loadtest/load/modes.h"

namespace greenline::load {

void AddCommonOptions(CLI::App& app, CommonOptions& common) {
  app.fallthrough();
  const char* group = "Common options (before or after the mode)";
  app.add_option("--host", common.host, "server address (name or IP)")
      ->capture_default_str()
      ->group(group);
  app.add_option("--port", common.port, "server port (default: echo 7007, chat 7070, idle 7007)")
      ->check(CLI::Range(1, 65535))
      ->group(group);
  app.add_option("--threads", common.threads,
                 "client threads, one event loop each (default: the CPUs this process may use)")
      ->check(CLI::Range(1, 1024))
      ->group(group);
  app.add_option("--duration", common.duration, "measured window in seconds (decimals allowed)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str()
      ->group(group);
  app.add_option("--warmup", common.warmup, "seconds of load before the window opens (not counted)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str()
      ->group(group);
  app.add_option("--json", common.json_path,
                 "also write the report as JSON to FILE ('-': stdout, the text report then goes "
                 "to stderr)")
      ->group(group);
  app.add_option("--stat-cpu", common.stat_cpu,
                 "measure CPU N's busy time from /proc/stat over the window (the server's pinned "
                 "CPU): server CPU utilization and CPU time per unit")
      ->check(CLI::Validator(
          [](std::string& s) -> std::string {
            int cpu = std::atoi(s.c_str());
            if (cpu < 0 || !ReadCpuSample(cpu)) return "no cpu" + s + " line in /proc/stat";
            return "";
          },
          "CPU", "cpu in /proc/stat"))
      ->group(group);
  app.add_option("--server-pid", common.server_pid,
                 "the server's process: its own CPU time (/proc/P/stat) and RSS (VmRSS, VmHWM)")
      ->check(CLI::Validator(
          [](std::string& s) -> std::string {
            int pid = std::atoi(s.c_str());
            if (pid <= 0 || !std::filesystem::exists("/proc/" + std::to_string(pid) + "/stat")) {
              return "no process " + s;
            }
            return "";
          },
          "PID", "running process"))
      ->group(group);
  app.add_option("--connect-timeout", common.connect_timeout,
                 "seconds allowed for one connect (and for chat's handshake lines)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str()
      ->group(group);
  app.add_flag("--quiet", common.quiet, "no live progress line on stderr")->group(group);
}

int Emit(const Report& report, const CommonOptions& common) {
  const bool json_to_stdout = common.json_path == "-";
  report.PrintText(json_to_stdout ? stderr : stdout);
  if (!common.json_path.empty()) {
    std::string text = report.ToJson().dump(2) + "\n";
    if (json_to_stdout) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
    } else {
      std::ofstream out(common.json_path, std::ios::trunc);
      out << text;
      out.flush();
      if (!out) {
        std::fprintf(stderr, "greenline-load: cannot write %s\n", common.json_path.c_str());
        return kExitFailed;
      }
    }
  }
  return report.Ok() ? kExitOk : kExitErrors;
}

Progress::Progress(bool quiet, std::function<std::string(double)> line) : line_(std::move(line)) {
  if (quiet) return;
  tty_ = isatty(STDERR_FILENO) == 1;
  thread_ = std::thread([this] { Run(); });
}

Progress::~Progress() { Stop(); }

void Progress::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Progress::Run() {
  const auto start = std::chrono::steady_clock::now();
  bool printed = false;
  for (int tick = 1;; ++tick) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_.wait_until(lock, start + std::chrono::seconds(tick), [this] { return stop_; })) {
        break;
      }
    }
    double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::string text = line_(elapsed);
    if (tty_) {
      std::fprintf(stderr, "\r%s\x1b[K", text.c_str());
    } else {
      std::fprintf(stderr, "%s\n", text.c_str());
    }
    std::fflush(stderr);
    printed = true;
  }
  if (tty_ && printed) {
    std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }
}

HardStop::HardStop(double seconds, std::string what) {
  thread_ = std::thread([this, seconds, what = std::move(what)] {
    std::unique_lock<std::mutex> lock(mu_);
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                        std::chrono::duration<double>(seconds));
    if (cv_.wait_until(lock, deadline, [this] { return cancelled_; })) return;
    std::fprintf(stderr, "\ngreenline-load: %s did not end within %.1f s: hard stop\n",
                 what.c_str(), seconds);
    std::fflush(stderr);
    _exit(kExitFailed);
  });
}

void HardStop::Cancel() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int ThreadCount(const CommonOptions& common) {
  if (common.threads > 0) return common.threads;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

}  // namespace greenline::load
