// Runtime timers: the clock behind Sleep, After and Ticker (chan/timer_chan.cc), and socket
// deadlines (netpoll/netpoll.cc).
//
// Each worker owns a 4-ary min-heap of timers (Go's per-P timer heap), under its own spinlock, so
// adding, stopping and firing stay O(log n) and mostly uncontended even with a million timers (one
// idle timeout per connection). A timer is added to the heap of the worker that adds it. A worker
// fires its due timers each time it schedules; idle workers fire the due timers of busy workers
// when they look for work to steal; a parked worker sleeps until the earliest timer of all workers.
// Callbacks run on a worker's scheduling path with no lock held: they must be short and must not
// park (readying a goroutine is the typical body).
//
// For the runtime's own modules (sleep, channels' timers, netpoll deadlines).
#pragma once

#include <atomic>
#include <cstdint>

#include "runtime/base/runtime_internal.h"

namespace greenline::internal {

struct Worker;

// Monotonic clock in nanoseconds (CLOCK_MONOTONIC).
int64_t Nanotime();

// now + d, saturated: a timer for a huge duration never wraps around into the past (Go's maxWhen).
inline int64_t WhenAfter(int64_t now, int64_t d) {
  constexpr int64_t kMaxWhen = INT64_MAX / 2;
  if (d <= 0) return now;
  return d >= kMaxWhen - now ? kMaxWhen : now + d;
}

struct Timer {
  int64_t when = 0;  // CLOCK_MONOTONIC ns; guarded by the owning heap's lock while in a heap
  // > 0: re-armed after each firing at the next multiple of the period after `when` that is still
  // in the future (ticks missed by a late worker are dropped, and the phase is kept, as Go's
  // tickers do). The callback reads `when` as the time the tick was due.
  int64_t period = 0;
  // Called with no lock held, on a worker (or the thread that stops the runtime: never).
  void (*fn)(Timer* timer, int64_t now) = nullptr;
  void* arg = nullptr;
  // The worker whose heap holds this timer, or nullptr when in none. Written under that heap's
  // lock; read racily (acquire) by StopTimer to find the lock to take.
  std::atomic<Worker*> heap{nullptr};
  int32_t index = -1;  // position in the heap; guarded by the heap's lock
  // A periodic timer whose callback runs right now (it is in no heap meanwhile). Stored before the
  // heap field is cleared and cleared after it is set again, so StopTimer can wait the callback
  // out. One-shot timers never set it: their callback may free them.
  std::atomic<bool> firing{false};
  // Called when the runtime stops with the timer still pending (no lock held), so a timer that
  // owns itself (a one-shot freed by its callback) is freed anyway. Optional.
  void (*discard)(Timer* timer) = nullptr;
};

// Adds `t` (not in any heap; t->when set) to the calling worker's heap, or to worker 0's from a
// thread that is not a worker. Requires a running runtime.
void AddTimer(Timer* t);

// Removes `t` from its heap. True if it was removed before firing; false if it was not in a heap
// (never added, already fired, or a one-shot timer firing right now on another worker: its
// callback may still be running, so memory it uses must stay valid until the callback is known to
// be done). A periodic timer is never lost that way: while its callback runs, StopTimer waits for
// it to finish (so it must not be called from the timer's own callback), then removes it: once it
// returns, the callback is not running and will not run again.
bool StopTimer(Timer* t);

// Pending timers across all workers (the deadlock detector's "no timer pending" test).
int64_t PendingTimers();

}  // namespace greenline::internal
