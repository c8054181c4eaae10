// Timers: per-worker 4-ary min-heaps (see timer.h), and Sleep on top of them.
//
// Invariants: a Timer is in at most one heap; t->heap names it and t->index is its slot, both
// written under that heap's lock. timer0_when mirrors heap[0]->when (0 when empty) so schedulers
// can skip the lock and the clock when nothing is due. A fired timer is out of every heap before
// its callback runs, and the callback runs with no lock held, so it may add timers. Periodic
// timers are re-added after their callback, with `firing` set meanwhile so that StopTimer can wait
// for the callback to end (a Ticker's owner may free it as soon as Stop returns).
#include <time.h>

#include <chrono>

#include "greenline/goroutine.h"
#include "runtime/base/fatal.h"
#include "runtime/sched/internal/sched.h"
#include "runtime/sched/park.h"
#include "runtime/sched/timer.h"

namespace greenline::internal {

int64_t Nanotime() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

namespace {

constexpr size_t kArity = 4;

void SiftUp(std::vector<Timer*>& h, size_t i) {
  Timer* t = h[i];
  while (i > 0) {
    size_t parent = (i - 1) / kArity;
    if (h[parent]->when <= t->when) break;
    h[i] = h[parent];
    h[i]->index = static_cast<int32_t>(i);
    i = parent;
  }
  h[i] = t;
  t->index = static_cast<int32_t>(i);
}

void SiftDown(std::vector<Timer*>& h, size_t i) {
  Timer* t = h[i];
  size_t n = h.size();
  for (;;) {
    size_t first = i * kArity + 1;
    if (first >= n) break;
    size_t best = first;
    size_t last = first + kArity < n ? first + kArity : n;
    for (size_t c = first + 1; c < last; ++c) {
      if (h[c]->when < h[best]->when) best = c;
    }
    if (h[best]->when >= t->when) break;
    h[i] = h[best];
    h[i]->index = static_cast<int32_t>(i);
    i = best;
  }
  h[i] = t;
  t->index = static_cast<int32_t>(i);
}

void PushLocked(Worker* w, Timer* t) GL_REQUIRES(w->timers_lock) {
  t->index = static_cast<int32_t>(w->timers.size());
  w->timers.push_back(t);
  SiftUp(w->timers, w->timers.size() - 1);
  t->heap.store(w, std::memory_order_release);
  w->ntimers.store(static_cast<int64_t>(w->timers.size()), std::memory_order_relaxed);
  w->timer0_when.store(w->timers[0]->when, std::memory_order_relaxed);
}

void RemoveLocked(Worker* w, Timer* t) GL_REQUIRES(w->timers_lock) {
  auto& h = w->timers;
  size_t i = static_cast<size_t>(t->index);
  Timer* last = h.back();
  h.pop_back();
  if (i < h.size()) {
    h[i] = last;
    last->index = static_cast<int32_t>(i);
    if (i > 0 && h[(i - 1) / kArity]->when > last->when) {
      SiftUp(h, i);
    } else {
      SiftDown(h, i);
    }
  }
  t->index = -1;
  t->heap.store(nullptr, std::memory_order_release);
  // Release: a reader that sees the timer gone also sees timers_in_flight raised (RunDueTimers).
  w->ntimers.store(static_cast<int64_t>(h.size()), std::memory_order_release);
  w->timer0_when.store(h.empty() ? 0 : h[0]->when, std::memory_order_relaxed);
}

}  // namespace

void AddTimer(Timer* t) {
  Sched* s = g_sched.load(std::memory_order_acquire);
  if (s == nullptr) Fatal("runtime: timer added with no runtime running");
  Worker* w = CurrentWorker();
  bool foreign = w == nullptr;
  if (foreign) w = s->workers[0].get();
  // Read before the push: once in the heap the timer may fire on another worker, and its owner
  // (a sleeping goroutine, say) run and re-arm it, at any moment.
  const int64_t when = t->when;
  int64_t old0;
  {
    SpinLockGuard lock(w->timers_lock);
    if (t->heap.load(std::memory_order_relaxed) != nullptr) {
      Fatal("runtime: timer added twice");
    }
    old0 = w->timer0_when.load(std::memory_order_relaxed);
    PushLocked(w, t);
  }
  // A worker parked on a later deadline must learn of an earlier one. From a worker, this worker
  // will see it at its next schedule; idle workers compute their deadline when they park, so
  // nudge one awake when the new timer is the earliest of this heap.
  if (foreign || old0 == 0 || when < old0) {
    if (s->npidle.load(std::memory_order_acquire) > 0) {
      OsMutexGuard lock(s->lock);
      if (!s->idle_workers.empty()) s->idle_workers.back()->poller->Wake();
    }
  }
}

bool StopTimer(Timer* t) {
  for (;;) {
    Worker* w = t->heap.load(std::memory_order_acquire);
    if (w == nullptr) {
      if (t->firing.load(std::memory_order_acquire)) {
        CpuRelax();  // a periodic callback runs; it is short, and the timer goes back right after
        continue;
      }
      // Not firing: but it may have been re-added just before `firing` was cleared.
      if (t->heap.load(std::memory_order_acquire) != nullptr) continue;
      return false;
    }
    SpinLockGuard lock(w->timers_lock);
    if (t->heap.load(std::memory_order_relaxed) != w) continue;  // moved or fired meanwhile
    RemoveLocked(w, t);
    return true;
  }
}

void RunDueTimers(Worker* w, int64_t now) {
  if (w->timer0_when.load(std::memory_order_relaxed) == 0) return;
  if (now == 0) now = Nanotime();
  for (;;) {
    Timer* due = nullptr;
    bool periodic;
    Sched* s = g_sched.load(std::memory_order_relaxed);
    {
      SpinLockGuard lock(w->timers_lock);
      if (w->timers.empty() || w->timers[0]->when > now) break;
      due = w->timers[0];
      periodic = due->period > 0;
      s->timers_in_flight.fetch_add(1, std::memory_order_relaxed);  // published by RemoveLocked
      if (periodic) due->firing.store(true, std::memory_order_relaxed);  // before heap is cleared
      RemoveLocked(w, due);
    }
    due->fn(due, now);  // a one-shot timer may be gone after this
    if (periodic) {
      SpinLockGuard lock(w->timers_lock);
      // Go's ticker: the next multiple of the period after `when` that is in the future.
      int64_t missed = (now - due->when) / due->period;
      due->when = WhenAfter(due->when, (missed + 1) * due->period);
      PushLocked(w, due);
      due->firing.store(false, std::memory_order_release);  // after heap is set again
    }
    s->timers_in_flight.fetch_sub(1, std::memory_order_release);
  }
}

int64_t EarliestTimer(Sched* s) {
  int64_t earliest = 0;
  for (const auto& w : s->workers) {
    int64_t when = w->timer0_when.load(std::memory_order_relaxed);
    if (when != 0 && (earliest == 0 || when < earliest)) earliest = when;
  }
  return earliest;
}

int64_t PendingTimers() {
  Sched* s = g_sched.load(std::memory_order_acquire);
  if (s == nullptr) return 0;
  int64_t n = 0;
  for (const auto& w : s->workers) n += w->ntimers.load(std::memory_order_acquire);
  return n;
}

void ClearTimers(Sched* s) {
  std::vector<Timer*> discard;
  for (auto& w : s->workers) {
    SpinLockGuard lock(w->timers_lock);
    for (Timer* t : w->timers) {
      t->index = -1;
      t->heap.store(nullptr, std::memory_order_relaxed);
      if (t->discard != nullptr) discard.push_back(t);
    }
    w->timers.clear();
    w->ntimers.store(0, std::memory_order_relaxed);
    w->timer0_when.store(0, std::memory_order_relaxed);
  }
  for (Timer* t : discard) t->discard(t);
}

}  // namespace greenline::internal

namespace greenline {

// Not inlined: blocking entry points stay visible as frames in goroutine dumps, as in Go's.
__attribute__((noinline)) void Sleep(std::chrono::nanoseconds d) {
  if (d.count() <= 0) return;
  internal::G* g = internal::CurrentG();
  if (g == nullptr) {
    timespec ts{static_cast<time_t>(d.count() / 1'000'000'000),
                static_cast<long>(d.count() % 1'000'000'000)};
    while (nanosleep(&ts, &ts) != 0) {
    }
    return;
  }
  internal::Timer* t = &g->sleep_timer;
  t->when = internal::WhenAfter(internal::Nanotime(), d.count());
  t->period = 0;
  t->arg = g;
  t->fn = [](internal::Timer* timer, int64_t) {
    internal::Ready(static_cast<internal::G*>(timer->arg));
  };
  // The timer goes in only after this goroutine is fully switched out, so its firing (on any
  // worker) cannot ready it half-parked.
  internal::Park(
      WaitReason::kSleep,
      [](internal::G* self, void*) {
        internal::AddTimer(&self->sleep_timer);
        return true;
      },
      nullptr);
}

}  // namespace greenline
