#include "greenline/dump.h"

#include <signal.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

#include "runtime/base/backtrace.h"
#include "runtime/base/fatal.h"
#include "runtime/sched/internal/sched.h"

namespace greenline::internal {
namespace {

constexpr int kMaxFrames = 64;

// A parked goroutine's stack bounds, read racily (a hibernating goroutine gives its stack back
// and gets another whenever it parks and runs): a torn pair only ends the bounded walk early.
__attribute__((no_sanitize("thread"))) Stack SnapshotStack(const G* g) {
  const volatile Stack* src = &g->stack;
  return Stack{src->lo, src->size, src->guarded};
}

// Reads a parked goroutine's saved context. Racy by design (it may be resumed while we read):
// a torn read only makes the stack walk end early, as every read is bounds-checked.
__attribute__((no_sanitize("address", "thread"))) Context SnapshotContext(const G* g) {
  Context ctx;
  const volatile char* src = reinterpret_cast<const volatile char*>(&g->fiber.ctx);
  char* dst = reinterpret_cast<char*>(&ctx);
  for (size_t i = 0; i < sizeof ctx; ++i) dst[i] = src[i];
  return ctx;
}

std::string StateText(const G* g, int64_t now) {
  GStatus st = g->status.load(std::memory_order_acquire);
  switch (st) {
    case GStatus::kRunning:
      return "running";
    case GStatus::kRunnable:
      return "runnable";
    case GStatus::kDead:
      return "dead";
    case GStatus::kIdle:
      return "idle";
    case GStatus::kWaiting:
      break;
  }
  std::string text(WaitReasonName(g->wait_reason.load(std::memory_order_relaxed)));
  int64_t since = g->wait_since.load(std::memory_order_relaxed);
  int64_t minutes = since > 0 ? (now - since) / 60'000'000'000 : 0;
  if (minutes >= 1) {
    text += ", " + std::to_string(minutes) + (minutes == 1 ? " minute" : " minutes");
  }
  return text;
}

}  // namespace

void DumpGoroutines(int fd) {
  Sched* s = g_sched.load(std::memory_order_acquire);
  if (s == nullptr) return;
  int64_t now = Nanotime();
  // Snapshot the list, then work without the lock: spawning must not wait on our output.
  std::vector<G*> gs;
  {
    OsMutexGuard lock(s->all_gs_lock);
    gs = s->all_gs;
  }
  for (G* g : gs) {
    GStatus st = g->status.load(std::memory_order_acquire);
    if (st == GStatus::kIdle || st == GStatus::kDead) continue;
    uintptr_t pcs[kMaxFrames];
    int n = 0;
    std::string extra;
    if (st == GStatus::kRunning) {
      // Executing on some worker: ask that worker's thread for its own stack.
      for (auto& w : s->workers) {
        if (w->cur_goid.load(std::memory_order_relaxed) != g->id) continue;
        uint64_t goid = 0;
        if (!CaptureRunningBacktrace(w.get(), pcs, &n, &goid, 200'000'000) || goid != g->id) {
          n = 0;
          extra = "\t(executing on worker " + std::to_string(w->id) + "; stack not captured)\n";
        }
        break;
      }
    } else {
      Context ctx = SnapshotContext(g);
      Stack stack = SnapshotStack(g);
      auto lo = reinterpret_cast<uintptr_t>(stack.lo);
      auto hi = reinterpret_cast<uintptr_t>(stack.hi());
      if (!g->started) {
        extra = "\t(not started yet)\n";
      } else if (lo == 0) {
        extra = "\t(hibernating: no stack until its next step)\n";
      } else {
        n = WalkFramePointers(ContextFramePointer(ctx), ContextPc(ctx), lo, hi, pcs, kMaxFrames);
      }
    }
    std::string header = "goroutine " + std::to_string(g->id) + " [" + StateText(g, now) + "]:\n";
    WriteAll(fd, header);
    WriteBacktrace(fd, pcs, n);
    WriteAll(fd, extra);
    WriteAll(fd, "\n");
  }
}

}  // namespace greenline::internal

namespace greenline {
void WriteGoroutineDump(int fd) { internal::DumpGoroutines(fd); }
}  // namespace greenline
