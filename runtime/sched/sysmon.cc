// The monitor: Go's sysmon for a cooperative runtime.
//
// A thread of its own (not a worker) that wakes every 2 ms while any worker is busy, every 10 ms
// when all are idle, so an idle runtime costs ~100 wakeups a second and no measurable CPU. For each
// worker it notes when the worker's schedtick last changed; a worker whose tick has not moved for
// longer than Options::long_run_warning_ns (10 ms) is executing one goroutine that has not
// yielded. We cannot preempt it (see HACKING.md), so the monitor:
//   - logs it once per run slice, with the goroutine's id and its backtrace (captured on its
//     worker by SIGURG), at warn level;
//   - if that worker has goroutines queued behind it or due timers, wakes an idle worker, which
//     steals half its queue (and its runnext) and fires its timers. With one worker there is no one
//     to hand them to: the warning says so.
// Every 500 ms it also scavenges goroutine stacks: after a burst of goroutines has exited, free Gs
// beyond kMaxPooledStacks give their stacks' pages back, half the excess per pass, so RSS follows
// the load down without an exiting goroutine ever paying for a system call.
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "greenline/log.h"
#include "runtime/base/backtrace.h"
#include "runtime/base/os_mutex.h"
#include "runtime/sched/internal/sched.h"

namespace greenline::internal {
namespace {

// A worker stuck this long on one goroutine gets its queue and due timers handed to an idle
// worker, whatever the warning threshold (Options::long_run_warning_ns) says.
constexpr int64_t kHandoffAfterNs = 10'000'000;

OsMutex g_mon_mu;
OsCondVar g_mon_cv;
bool g_mon_stop GL_GUARDED_BY(g_mon_mu) = false;
std::thread g_mon_thread;

struct Observation {
  uint64_t tick = 0;
  int64_t since = 0;
  bool reported = false;
  bool held_back = false;  // ran past the threshold while reports were rate-limited
};

// At most one long-run report a second: a server whose handlers all run long would otherwise log a
// backtrace per goroutine. A run held back is reported when the second is over if it still runs;
// the next report counts those that ended first.
constexpr int64_t kLongRunReportEveryNs = 1'000'000'000;

void ReportLongRun(Sched* s, Worker* w, uint64_t goid, int64_t ran_ns, uint64_t left_out) {
  uintptr_t pcs[64];
  int n = 0;
  uint64_t captured = 0;
  std::string trace;
  if (CaptureRunningBacktrace(w, pcs, &n, &captured, 50'000'000) && captured == goid) {
    trace = "\n" + FormatBacktrace(pcs, n);
    if (!trace.empty() && trace.back() == '\n') trace.pop_back();
  }
  Logf(LogLevel::kWarn,
       "runtime: goroutine %llu has run for %lld ms on worker %d without yielding; scheduling is "
       "cooperative, so %s (call greenline::Yield() in long loops, or use greenline::Blocking() "
       "for blocking calls)%s%s",
       static_cast<unsigned long long>(goid), static_cast<long long>(ran_ns / 1'000'000), w->id,
       s->nworkers > 1 ? "idle workers are taking the goroutines queued behind it"
                       : "goroutines queued behind it wait (one worker)",
       left_out == 0 ? ""
                     : (" [" + std::to_string(left_out) +
                        " other long runs since the last report not reported]")
                           .c_str(),
       trace.c_str());
}

void MonitorLoop(Sched* s) {
  pthread_setname_np(pthread_self(), "greenline-mon");
  std::vector<Observation> seen(s->nworkers);
  int64_t threshold = s->options.long_run_warning_ns;
  int64_t next_scavenge = Nanotime() + 500'000'000;
  int64_t last_report = 0;
  uint64_t left_out = 0;  // long runs not reported since last_report
  OsMutexLock lock(g_mon_mu);
  for (;;) {
    bool all_idle = s->npidle.load(std::memory_order_relaxed) == s->nworkers;
    g_mon_cv.WaitFor(g_mon_mu, std::chrono::milliseconds(all_idle ? 10 : 2));
    if (g_mon_stop) return;
    int64_t now = Nanotime();
    s->coarse_now.store(now, std::memory_order_relaxed);
    if (now >= next_scavenge) {
      lock.Unlock();
      ScavengeStacks(s, 65536);
      lock.Lock();
      if (g_mon_stop) return;
      next_scavenge = now + 500'000'000;
    }
    for (int i = 0; i < s->nworkers; ++i) {
      Worker* w = s->workers[i].get();
      Observation& o = seen[i];
      uint64_t tick = w->schedtick.load(std::memory_order_relaxed);
      uint64_t goid = w->cur_goid.load(std::memory_order_relaxed);
      if (goid == 0 || tick != o.tick) {
        // A long run that ended before its report was due is counted in the next report.
        if (o.held_back && !o.reported) ++left_out;
        o.tick = tick;
        o.since = now;
        o.reported = false;
        o.held_back = false;
        continue;
      }
      if (now - o.since < kHandoffAfterNs) continue;
      int64_t when = w->timer0_when.load(std::memory_order_relaxed);
      bool backlog = !RunqEmpty(w) || (when != 0 && when <= now);
      if (backlog) Wakep(s);
      if (now - o.since < threshold) continue;
      if (!o.reported && threshold > 0) {
        if (last_report != 0 && now - last_report < kLongRunReportEveryNs) {
          o.held_back = true;  // reported once the window has passed, if it still runs
          continue;
        }
        o.reported = true;
        last_report = now;
        uint64_t n = left_out;
        left_out = 0;
        lock.Unlock();
        ReportLongRun(s, w, goid, now - o.since, n);
        lock.Lock();
        if (g_mon_stop) return;
      }
    }
  }
}

}  // namespace

void StartMonitor(Sched* s) {
  {
    OsMutexGuard lock(g_mon_mu);
    g_mon_stop = false;
  }
  g_mon_thread = std::thread(&MonitorLoop, s);
}

void StopMonitor() {
  {
    OsMutexGuard lock(g_mon_mu);
    g_mon_stop = true;
  }
  g_mon_cv.NotifyAll();
  if (g_mon_thread.joinable()) g_mon_thread.join();
}

}  // namespace greenline::internal
