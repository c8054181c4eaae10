// modes.h: greenline-load's modes (echo, chat, idle) and what they share: the common flags, the
// live progress line, and how a run's Report is emitted. main.cc builds the CLI11 app from these.
//
// Exit status of greenline-load (every mode):
//   0  the run completed and was healthy (no error of any kind)
//   1  the run completed with errors (a mismatched echo, a lost/duplicated/reordered chat message,
//      a connection the server closed early, ...): the report says which, by kind
//   2  bad flags (CLI11's usage error), or a request the machine cannot carry out as asked
//      (chat --rooms > --users, RLIMIT_NOFILE too low for chat's --users or idle's --conns, ...)
//   3  the run could not be carried out: host unresolvable, server unreachable or refusing, every
//      connection closed before the window, chat's handshake failed or stalled, idle's RSS source
//      unreadable, the --json file unwritable, or the HardStop fired; stderr says why
#pragma once

#include <CLI/CLI.hpp>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "loadtest/load/report.h"

namespace greenline::load {

inline constexpr int kExitOk = 0;
inline constexpr int kExitErrors = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitFailed = 3;

// Flags every mode takes (given before or after the mode's name).
struct CommonOptions {
  std::string host = "127.0.0.1";
  int port = 0;                // 0: the mode's default (echo 7007, chat 7070, idle 7007)
  int threads = 0;             // 0: ThreadCount() decides (the CPUs this process may use)
  double duration = 10;        // measured seconds (not used by idle)
  double warmup = 1;           // seconds before the window opens, not counted (not used by idle)
  std::string json_path;       // --json FILE ("-": stdout, then the text report goes to stderr)
  int stat_cpu = -1;           // --stat-cpu N: sample /proc/stat cpuN at the window's edges
  int server_pid = 0;          // --server-pid P: the server's process CPU and RSS (VmRSS, VmHWM)
  double connect_timeout = 5;  // seconds for one connect; chat: the handshake's no-progress
                               // watchdog; idle: also the sample's echo and the /metrics GET
  bool quiet = false;          // --quiet: no progress line
};

// Adds the common flags to `app` (the top-level app: CLI11 lets subcommands fall through to it).
void AddCommonOptions(CLI::App& app, CommonOptions& common);

// Each adds its subcommand to `app`; when the subcommand was chosen and parsing succeeded, its
// callback runs the mode and stores the exit status in `exit_code`.
void AddEchoCommand(CLI::App& app, const CommonOptions& common, int& exit_code);
void AddChatCommand(CLI::App& app, const CommonOptions& common, int& exit_code);
void AddIdleCommand(CLI::App& app, const CommonOptions& common, int& exit_code);

// Prints `report` as text (stdout, or stderr when the JSON goes to stdout), writes its JSON to
// common.json_path if set, and returns the exit status: kExitOk or kExitErrors (kExitFailed if the
// JSON file cannot be written).
int Emit(const Report& report, const CommonOptions& common);

// The live progress line: once a second, `line(seconds since start)` is written to stderr, as a
// single updating line (\r, cleared with ESC[K) on a terminal, plain lines otherwise. Stop() (or
// the destructor) ends it and finishes the line. Nothing is printed with quiet = true.
class Progress {
 public:
  Progress(bool quiet, std::function<std::string(double)> line);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  void Stop();

 private:
  void Run();

  std::function<std::string(double)> line_;  // called on the progress thread only
  bool tty_ = false;                         // stderr is a terminal: one updating line
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;   // guarded by mu_
  std::thread thread_;  // not joinable with quiet = true
};

// A last resort against a hang: unless destroyed (or Cancel()ed) within `seconds`, writes
// "greenline-load: <what> did not end within N s: hard stop" to stderr and _exit()s with
// kExitFailed. A mode arms one around its whole run (connects + warmup + duration + drain, or
// idle's connects + hold, plus a margin) so that no bug of ours or state of the server can make it
// hang.
class HardStop {
 public:
  HardStop(double seconds, std::string what);
  ~HardStop() { Cancel(); }
  HardStop(const HardStop&) = delete;
  HardStop& operator=(const HardStop&) = delete;
  void Cancel();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool cancelled_ = false;  // guarded by mu_
  std::thread thread_;
};

// The threads to run: common.threads, or the CPUs this process may run on (its affinity mask, so
// `taskset -c 1 greenline-load` gets one thread; hardware_concurrency if the mask is unreadable).
int ThreadCount(const CommonOptions& common);

}  // namespace greenline::load
