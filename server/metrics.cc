#include "server/metrics.h"

#include <dirent.h>
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "greenline/net.h"
#include "greenline/runtime.h"
#include "greenline/state.h"

#ifndef GREENLINE_VERSION
#error "GREENLINE_VERSION must be defined by the build (server/CMakeLists.txt)"
#endif

namespace greenline::server {

std::string_view BuildVersion() { return GREENLINE_VERSION; }

std::string_view ServiceName(ServiceId service) {
  switch (service) {
    case ServiceId::kEcho:
      return "echo";
    case ServiceId::kChat:
      return "chat";
    case ServiceId::kHttp:
      return "http";
    case ServiceId::kCount:
      break;
  }
  return "";
}

std::string_view DisconnectReasonName(DisconnectReason reason) {
  switch (reason) {
    case DisconnectReason::kEof:
      return "eof";
    case DisconnectReason::kError:
      return "error";
    case DisconnectReason::kIdleTimeout:
      return "idle_timeout";
    case DisconnectReason::kLineTooLong:
      return "line_too_long";
    case DisconnectReason::kTooSlow:
      return "too_slow";
    case DisconnectReason::kQuit:
      return "quit";
    case DisconnectReason::kServerFull:
      return "server_full";
    case DisconnectReason::kPanic:
      return "panic";
    case DisconnectReason::kShutdown:
      return "shutdown";
    case DisconnectReason::kCount:
      break;
  }
  return "";
}

namespace internal {

size_t ShardCount() {
  // Twice the hardware threads: threads take shards round-robin in the order they first count,
  // and the headroom keeps the workers apart when a few other threads (the blocking pool, the main
  // thread of a test) have taken shards in between.
  static const size_t count = [] {
    size_t hw = std::max(1u, std::thread::hardware_concurrency());
    return std::min<size_t>(128, std::bit_ceil(2 * hw));
  }();
  return count;
}

__attribute__((noinline)) size_t ThreadShard() {
  static std::atomic<size_t> next{0};  // relaxed: only hands out distinct numbers
  thread_local size_t shard = next.fetch_add(1, std::memory_order_relaxed) & (ShardCount() - 1);
  asm volatile("" ::: "memory");  // as CurrentWorker(): never folded into a caller across a switch
  return shard;
}

uint64_t Cells::Sum() const {
  uint64_t sum = 0;
  for (size_t i = 0, n = ShardCount(); i < n; ++i) {
    sum += cells_[i].value.load(std::memory_order_relaxed);
  }
  return sum;
}

}  // namespace internal

void Gauge::Set(int64_t value) {
  std::lock_guard<std::mutex> lock(set_lock_);
  Add(value - Value());
}

namespace {

// What the kernel says about this process; -1 where it could not be read.
struct ProcessStats {
  double cpu_seconds = -1;
  int64_t resident_bytes = -1;
  int64_t virtual_bytes = -1;
  int64_t open_fds = -1;
  int64_t max_fds = -1;
  double start_time_seconds = -1;  // Unix time
};

// Reads a small /proc file whole (they are generated on read; stdio would do the same in pieces).
std::string ReadProcFile(const char* path) {
  std::string out;
  FILE* f = std::fopen(path, "re");
  if (f == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}

int64_t CountOpenFds() {
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  int64_t n = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n - 1;  // the directory's own descriptor
}

// When this process started, as Unix time: its start in clock ticks since boot (/proc/self/stat,
// field 22) plus the boot time (/proc/stat, btime). What client_golang's process collector does.
double ReadStartTime() {
  std::string stat = ReadProcFile("/proc/self/stat");
  // The command name (field 2) is in parentheses and may itself hold spaces and parentheses: the
  // fields that follow start after the last ')'.
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  const char* p = stat.c_str() + close + 1;
  unsigned long long start_ticks = 0;
  // Field 3 (state) is the first token after ')'; field 22 (starttime) is the 20th.
  for (int field = 3; field <= 22; ++field) {
    while (*p == ' ') ++p;
    if (*p == '\0') return -1;
    if (field == 22) start_ticks = std::strtoull(p, nullptr, 10);
    while (*p != ' ' && *p != '\0') ++p;
  }
  std::string proc_stat = ReadProcFile("/proc/stat");
  size_t at = proc_stat.find("\nbtime ");
  long ticks = sysconf(_SC_CLK_TCK);
  if (at == std::string::npos || ticks <= 0) return -1;
  double boot = std::strtod(proc_stat.c_str() + at + 7, nullptr);
  return boot + static_cast<double>(start_ticks) / static_cast<double>(ticks);
}

// CPU time, and virtual and resident memory (-1 where unknown).
void ReadUsage(double* cpu_seconds, int64_t* virtual_bytes, int64_t* resident_bytes) {
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) == 0) {
    *cpu_seconds = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                   static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  }
  long long pages = 0, resident = 0;
  if (std::sscanf(ReadProcFile("/proc/self/statm").c_str(), "%lld %lld", &pages, &resident) == 2) {
    long page = sysconf(_SC_PAGESIZE);
    *virtual_bytes = pages * page;
    *resident_bytes = resident * page;
  }
}

ProcessStats ReadProcessStats() {
  ProcessStats s;
  ReadUsage(&s.cpu_seconds, &s.virtual_bytes, &s.resident_bytes);
  s.open_fds = CountOpenFds();
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    s.max_fds = rl.rlim_cur == RLIM_INFINITY ? INT64_MAX : static_cast<int64_t>(rl.rlim_cur);
  }
  static const double start = ReadStartTime();  // it does not change
  s.start_time_seconds = start;
  return s;
}

// Builds the exposition text. Label values are escaped as the format requires (\\, \", \n).
class Writer {
 public:
  void Family(std::string_view name, std::string_view type, std::string_view help) {
    out_.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
  }
  void Sample(std::string_view name, std::string_view label, std::string_view label_value,
              std::string_view value) {
    out_.append(name);
    if (!label.empty()) {
      out_.append("{").append(label).append("=\"");
      for (char c : label_value) {
        if (c == '\\' || c == '"') {
          out_ += '\\';
          out_ += c;
        } else if (c == '\n') {
          out_.append("\\n");
        } else {
          out_ += c;
        }
      }
      out_.append("\"}");
    }
    out_.append(" ").append(value).append("\n");
  }
  void Sample(std::string_view name, int64_t value) { Sample(name, {}, {}, std::to_string(value)); }
  void Double(std::string_view name, double value) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3f", value);
    Sample(name, {}, {}, buf);
  }

  template <class Metric, class Label>
  void PerLabel(std::string_view name, std::string_view label, const Labeled<Metric, Label>& family,
                std::string_view (*label_name)(Label)) {
    for (size_t i = 0; i < static_cast<size_t>(Label::kCount); ++i) {
      Label l = static_cast<Label>(i);
      Sample(name, label, label_name(l), std::to_string(family[l].Value()));
    }
  }

  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace

ProcessUsage ReadProcessUsage() {
  ProcessUsage u;
  int64_t virtual_bytes = -1;
  ReadUsage(&u.cpu_seconds, &virtual_bytes, &u.resident_bytes);
  return u;
}

std::string Metrics::RenderPrometheus() const {
  Writer w;
  auto per_service = [&w](std::string_view name, std::string_view type, std::string_view help,
                          const auto& family) {
    w.Family(name, type, help);
    w.PerLabel(name, "service", family, &ServiceName);
  };
  per_service("greenline_connections_active", "gauge", "Connections open now, by service.",
              connections_active);
  per_service("greenline_connections_total", "counter", "Connections accepted, by service.",
              connections_total);
  per_service("greenline_lines_received_total", "counter", "Lines received from clients.",
              lines_received_total);
  per_service("greenline_lines_sent_total", "counter",
              "Lines sent to clients (chat: one per delivery).", lines_sent_total);
  per_service("greenline_bytes_received_total", "counter", "Bytes received from clients.",
              bytes_received_total);
  per_service("greenline_bytes_sent_total", "counter", "Bytes sent to clients.", bytes_sent_total);
  per_service("greenline_panics_recovered_total", "counter",
              "Connection handlers that panicked and were recovered.", panics_recovered_total);
  per_service("greenline_rate_limited_total", "counter",
              "Lines refused by flood control, not delivered.", rate_limited_total);

  w.Family("greenline_disconnects_total", "counter",
           "Line-protocol connections closed by the server or the client, by reason.");
  w.PerLabel("greenline_disconnects_total", "reason", disconnects_total, &DisconnectReasonName);

  w.Family("greenline_chat_rooms", "gauge",
           "Chat rooms: #lobby, and every other room while someone is in it.");
  w.Sample("greenline_chat_rooms", chat_rooms.Value());

  w.Family("greenline_chat_output_bytes", "gauge",
           "Chat output queued for all connections, bytes plus 64 per queued message.");
  w.Sample("greenline_chat_output_bytes", chat_output_bytes.Value());
  w.Family("greenline_chat_output_limit_bytes", "gauge",
           "The budget for all queued chat output (--out-memory).");
  w.Sample("greenline_chat_output_limit_bytes", chat_output_limit_bytes.Value());
  w.Family("greenline_chat_output_exhausted", "gauge",
           "1 while the chat output budget is exhausted (posting connections wait), else 0.");
  w.Sample("greenline_chat_output_exhausted", chat_output_exhausted.Value());
  w.Family("greenline_chat_output_exhausted_total", "counter",
           "Times the chat output budget was exhausted.");
  w.Sample("greenline_chat_output_exhausted_total", chat_output_exhausted_total.Value());

  w.Family("greenline_shutting_down", "gauge", "1 once a graceful shutdown has begun, else 0.");
  w.Sample("greenline_shutting_down", shutting_down.Value());

  // The runtime's own counts: cheap sums over the workers (approximate while goroutines move).
  StateCounts states = ReadStateCounts();
  w.Family("greenline_goroutines", "gauge",
           "User goroutines: running (executing, runnable, asleep, in I/O or a system call) or "
           "blocking (waiting for another goroutine: channel, select, sync).");
  w.Sample("greenline_goroutines", "state", "running", std::to_string(states.running));
  w.Sample("greenline_goroutines", "state", "blocking", std::to_string(states.blocking));
  w.Family("greenline_goroutines_waiting", "gauge",
           "Parked goroutines by wait reason (Go's names: \"IO wait\", \"chan receive\", ...).");
  for (int r = 1; r < static_cast<int>(WaitReason::kCount); ++r) {
    w.Sample("greenline_goroutines_waiting", "reason", WaitReasonName(static_cast<WaitReason>(r)),
             std::to_string(states.by_reason[r]));
  }

  w.Family("greenline_workers", "gauge", "Runtime workers (OS threads running goroutines).");
  w.Sample("greenline_workers", MaxProcs());

  w.Family("greenline_poller_info", "gauge", "The netpoller the workers wait in.");
  std::string poller = net::PollerName();
  if (!poller.empty()) w.Sample("greenline_poller_info", "kind", poller, "1");

  w.Family("greenline_build_info", "gauge", "The greenline version this server was built as.");
  w.Sample("greenline_build_info", "version", BuildVersion(), "1");

  ProcessStats p = ReadProcessStats();
  // glibc's totals (mallinfo2 walks the free chunks: microseconds to milliseconds, under each
  // arena's lock; this runs on the blocking pool). In use is what a leak grows; free is what the
  // heap keeps mapped for reuse, some of which RSS counts.
  struct mallinfo2 heap = mallinfo2();
  w.Family("greenline_heap_in_use_bytes", "gauge",
           "Heap bytes allocated (glibc malloc, big mmapped blocks included).");
  w.Sample("greenline_heap_in_use_bytes", static_cast<int64_t>(heap.uordblks + heap.hblkhd));
  w.Family("greenline_heap_free_bytes", "gauge",
           "Heap bytes free for reuse (glibc malloc), resident or given back to the kernel.");
  w.Sample("greenline_heap_free_bytes", static_cast<int64_t>(heap.fordblks));

  w.Family("process_cpu_seconds_total", "counter", "User and system CPU time spent in seconds.");
  if (p.cpu_seconds >= 0) w.Double("process_cpu_seconds_total", p.cpu_seconds);
  w.Family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  if (p.resident_bytes >= 0) w.Sample("process_resident_memory_bytes", p.resident_bytes);
  w.Family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
  if (p.virtual_bytes >= 0) w.Sample("process_virtual_memory_bytes", p.virtual_bytes);
  w.Family("process_open_fds", "gauge", "Number of open file descriptors.");
  if (p.open_fds >= 0) w.Sample("process_open_fds", p.open_fds);
  w.Family("process_max_fds", "gauge", "Maximum number of open file descriptors.");
  if (p.max_fds >= 0) w.Sample("process_max_fds", p.max_fds);
  w.Family("process_start_time_seconds", "gauge",
           "Start time of the process since unix epoch in seconds.");
  if (p.start_time_seconds >= 0) w.Double("process_start_time_seconds", p.start_time_seconds);
  return w.Take();
}

}  // namespace greenline::server
