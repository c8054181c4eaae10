// The scheduler: goroutines multiplexed onto N workers, Go's G/P/M model with P and M fused.
//
// Glossary.
//   G       a goroutine: a fiber (context + stack) and its bookkeeping (internal/g.h).
//   worker  Go's P with its M: an OS thread that runs goroutines, with a local run queue, a
//           runnext slot, a timer heap, a free-G cache and a poller to sleep in (internal/sched.h,
//           poller.h).
//   g0      a worker thread's own stack. It finds work, fires timers and parks; goroutines switch
//           to it only when they have no other goroutine to hand over to.
//
// Switching. A goroutine gives up its worker in Schedule(): it records what must happen to it
// (PostAction: requeue it, park it, free it), picks the next goroutine from the local queue and
// switches straight to it, with no stop on g0. The context that resumes runs RunPostSwitch(),
// which performs the recorded action *after* the first goroutine's registers are saved: only then
// may another worker steal it or a waker ready it. This is Go's mcall/gopark contract, with the
// unlock function run by the next goroutine instead of on g0, which halves the switches.
//
// Queues and fairness (as Go's proc.go).
//   - Ready() and Go() put the goroutine in the worker's runnext slot: it runs next, inheriting
//     the time slice, which keeps producer/consumer pairs on one warm cache. The previous runnext
//     is kicked to the tail of the local queue.
//   - The local queue is a 256-slot ring (single producer, many consumers); when full, half of it
//     moves to the global queue in one batch.
//   - Every 61st schedule looks at the global queue first so it cannot starve.
//   - Go bounds runnext ping-pong with the 10 ms preemption of the shared time slice; we cannot
//     preempt, so a worker takes at most kMaxRunnextStreak consecutive goroutines from runnext
//     before it takes one from its queue head: two goroutines readying each other cannot starve
//     the rest of the queue.
//
// Finding work and parking (FindRunnable on g0): due timers, runnext and local queue, global
// queue, then stealing half of a random victim's queue (4 passes; the last also takes runnext;
// thieves fire the victims' due timers too). Only a bounded number of workers look at once
// ("spinning", at most half the busy ones, as Go). A worker with nothing sleeps in its poller
// (poller.h: io_uring_enter or epoll_wait) until its earliest timer, I/O, or a Wake. A goroutine
// made runnable wakes one parked worker, and only when no worker is spinning (wakep): a spinning
// worker that finds work wakes the next one, so wakeups ripple only as far as the work goes. What
// a worker's own poller wait readies wakes nobody (the worker is still on the idle list then, and
// would wake itself): it runs the first, and wakes one helper if more came. A lone worker goes
// from an empty queue straight to its poller's wait, which submits and reaps, with no poll before.
// The last worker to park checks for deadlock. One difference from Go: our run-queue stores are
// release stores, not sequentially consistent ones, so a Ready() on a worker can miss a worker that
// is parking at that instant (store-load reordering). Nothing is lost: the goroutine sits on the
// readier's own queue and that worker runs it; only the chance to run it in parallel is missed. A
// fence on every Ready and spawn was judged not worth it.
//
// Hibernation (GoHibernating, erlang:hibernate/3's idea). A goroutine run in steps may park between
// two steps with nothing of its own on the stack: RunSteps (its outermost frame) calls the wait a
// step returned, which parks with ParkHibernate (PostAction::kHibernate). Its frames are never
// resumed, so RunPostSwitch gives its stack back to the worker's cache before the commit lets a
// waker see it, and when it runs again MarkRunning binds a fresh stack (BindStack, as for an
// unstarted goroutine) and GoroutineMain calls the next step. An idle connection then costs its G
// and its state, not a stack page. Go has no equivalent (its stacks only shrink, at GC).
//
// Cooperative. A goroutine runs until it parks, sleeps, yields or exits; nothing preempts it. The
// monitor (sysmon.cc) reports one that runs for more than ~10 ms and wakes an idle worker to steal
// the queue behind it.
//
// Thread-local state. `tls_worker` is read only through CurrentWorker(), a non-inlined function
// with a compiler barrier: code after a switch may run on another thread, and a TLS address the
// compiler kept from before the switch would name the old worker.
//
// Rejected: a central run queue under one lock (contention at every switch); switching through g0
// for every handoff (twice the switches, Go's cost); futex-per-goroutine parking (a syscall per
// block); ucontext (a sigprocmask syscall per switch).
#include <cxxabi.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <typeinfo>

#include "greenline/goroutine.h"
#include "greenline/log.h"
#include "greenline/runtime.h"
#include "greenline/runtime_error.h"
#include "runtime/base/backtrace.h"
#include "runtime/base/fatal.h"
#include "runtime/sched/internal/sched.h"
#include "runtime/sched/maxprocs.h"
#include "runtime/sched/park.h"

namespace greenline {
namespace internal {

std::atomic<Sched*> g_sched{nullptr};

namespace {

constexpr uint32_t kMaxRunnextStreak = 16;
constexpr int kGoidBatch = 16;

thread_local Worker* tls_worker = nullptr;

// xorshift64*: thieves pick victims in a random order, select its cases.
uint32_t XorShiftNext(uint64_t* state) {
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return static_cast<uint32_t>((x * 0x2545F4914F6CDD1Dull) >> 32);
}

uint32_t FastRand(Worker* w) { return XorShiftNext(&w->rand_state); }

template <class T>
void OwnerAdd(std::atomic<T>& counter, T delta) {
  counter.store(counter.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
}

// ---- run queues ------------------------------------------------------------------------------

// Moves half the local queue plus `g` to the global queue (Go's runqputslow). False if a thief
// got there first and there is room again.
bool RunqPutSlow(Sched* s, Worker* w, G* g, uint32_t head, uint32_t tail) {
  constexpr uint32_t n = kRunQueueSize / 2;
  if (tail - head != kRunQueueSize) Fatal("runtime: runqputslow: queue is not full");
  G* batch[n + 1];
  for (uint32_t i = 0; i < n; ++i) {
    batch[i] = w->runq[(head + i) % kRunQueueSize].load(std::memory_order_relaxed);
  }
  if (!w->runq_head.compare_exchange_strong(head, head + n, std::memory_order_release,
                                            std::memory_order_relaxed)) {
    return false;
  }
  batch[n] = g;
  for (uint32_t i = 0; i < n; ++i) batch[i]->sched_link = batch[i + 1];
  batch[n]->sched_link = nullptr;
  OsMutexGuard lock(s->lock);
  if (s->grunq_tail != nullptr) {
    s->grunq_tail->sched_link = batch[0];
  } else {
    s->grunq_head = batch[0];
  }
  s->grunq_tail = batch[n];
  s->grunq_size.fetch_add(n + 1, std::memory_order_relaxed);
  return true;
}

// Takes runnext, or the queue head. See the essay for the runnext streak bound.
inline __attribute__((always_inline)) G* RunqGet(Worker* w) {
  if (w->runnext_streak < kMaxRunnextStreak) {
    G* next = w->runnext.load(std::memory_order_relaxed);
    if (next != nullptr &&
        w->runnext.compare_exchange_strong(next, nullptr, std::memory_order_acquire)) {
      ++w->runnext_streak;
      return next;
    }
  }
  for (;;) {
    uint32_t head = w->runq_head.load(std::memory_order_acquire);
    uint32_t tail = w->runq_tail.load(std::memory_order_relaxed);
    if (head == tail) break;
    G* g = w->runq[head % kRunQueueSize].load(std::memory_order_relaxed);
    if (w->runq_head.compare_exchange_weak(head, head + 1, std::memory_order_release,
                                           std::memory_order_relaxed)) {
      w->runnext_streak = 0;
      return g;
    }
  }
  // The queue is empty: runnext is all there is, streak or not.
  G* next = w->runnext.load(std::memory_order_relaxed);
  if (next != nullptr &&
      w->runnext.compare_exchange_strong(next, nullptr, std::memory_order_acquire)) {
    w->runnext_streak = 1;
    return next;
  }
  return nullptr;
}

// Grabs half of `victim`'s queue into `batch` (Go's runqgrab). With `take_runnext`, an otherwise
// empty victim gives up its runnext.
uint32_t RunqGrab(Worker* victim, G** batch, bool take_runnext) {
  for (;;) {
    uint32_t head = victim->runq_head.load(std::memory_order_acquire);
    uint32_t tail = victim->runq_tail.load(std::memory_order_acquire);
    uint32_t n = tail - head;
    n = n - n / 2;
    if (n == 0) {
      if (take_runnext) {
        G* next = victim->runnext.load(std::memory_order_acquire);
        if (next != nullptr) {
          if (victim->runnext.compare_exchange_strong(next, nullptr, std::memory_order_acquire)) {
            batch[0] = next;
            return 1;
          }
          continue;
        }
      }
      return 0;
    }
    if (n > kRunQueueSize / 2) continue;  // head and tail read inconsistently: retry
    for (uint32_t i = 0; i < n; ++i) {
      batch[i] = victim->runq[(head + i) % kRunQueueSize].load(std::memory_order_relaxed);
    }
    if (victim->runq_head.compare_exchange_strong(head, head + n, std::memory_order_release,
                                                  std::memory_order_relaxed)) {
      return n;
    }
  }
}

// Steals half of victim's queue into w's; returns one goroutine to run.
G* RunqSteal(Worker* w, Worker* victim, bool take_runnext) {
  G* batch[kRunQueueSize / 2 + 1];
  uint32_t n = RunqGrab(victim, batch, take_runnext);
  if (n == 0) return nullptr;
  G* g = batch[--n];
  if (n == 0) return g;
  uint32_t tail = w->runq_tail.load(std::memory_order_relaxed);
  uint32_t head = w->runq_head.load(std::memory_order_acquire);
  if (tail - head + n >= kRunQueueSize) Fatal("runtime: runqsteal: queue overflow");
  for (uint32_t i = 0; i < n; ++i) {
    w->runq[(tail + i) % kRunQueueSize].store(batch[i], std::memory_order_relaxed);
  }
  w->runq_tail.store(tail + n, std::memory_order_release);
  return g;
}

// Takes a batch from the global queue (Go's globrunqget). Returns one to run and moves up to a
// fair share of the rest to w's local queue.
G* GlobalRunqGetLocked(Sched* s, Worker* w, int64_t max) GL_REQUIRES(s->lock) {
  int64_t size = s->grunq_size.load(std::memory_order_relaxed);
  if (size == 0) return nullptr;
  int64_t n = std::min<int64_t>(size, size / s->nworkers + 1);
  if (max > 0 && n > max) n = max;
  n = std::min<int64_t>(n, kRunQueueSize / 2);
  s->grunq_size.fetch_sub(n, std::memory_order_relaxed);
  G* g = s->grunq_head;
  s->grunq_head = g->sched_link;
  for (int64_t i = 1; i < n; ++i) {
    G* more = s->grunq_head;
    s->grunq_head = more->sched_link;
    RunqPut(w, more, false);
  }
  if (s->grunq_head == nullptr) s->grunq_tail = nullptr;
  return g;
}

G* GlobalRunqGet(Sched* s, Worker* w, int64_t max) {
  if (s->grunq_size.load(std::memory_order_relaxed) == 0) return nullptr;
  OsMutexGuard lock(s->lock);
  return GlobalRunqGetLocked(s, w, max);
}

// ---- goroutine lifecycle -----------------------------------------------------------------------

uint64_t NewGoid(Sched* s, Worker* w) {
  if (w == nullptr) return s->next_goid.fetch_add(1, std::memory_order_relaxed);
  if (w->goid_next == w->goid_end) {
    w->goid_next = s->next_goid.fetch_add(kGoidBatch, std::memory_order_relaxed);
    w->goid_end = w->goid_next + kGoidBatch;
  }
  return w->goid_next++;
}

// Pops a free G from the global list.
G* PopGlobalFreeLocked(Sched* s) GL_REQUIRES(s->lock) {
  G* g = s->gfree;
  if (g != nullptr) {
    s->gfree = g->sched_link;
    s->ngfree.fetch_sub(1, std::memory_order_relaxed);
  }
  return g;
}

// A G with no stack, from the worker's free list, the global one, or the heap.
G* AllocG(Sched* s, Worker* w) {
  G* g = nullptr;
  if (w != nullptr && w->gfree == nullptr && s->ngfree.load(std::memory_order_relaxed) > 0) {
    // Refill the local cache with a batch from the global list.
    OsMutexGuard lock(s->lock);
    while (w->ngfree < kMaxLocalFreeGs / 2) {
      G* f = PopGlobalFreeLocked(s);
      if (f == nullptr) break;
      f->sched_link = w->gfree;
      w->gfree = f;
      ++w->ngfree;
    }
  }
  if (w != nullptr && w->gfree != nullptr) {
    g = w->gfree;
    w->gfree = g->sched_link;
    --w->ngfree;
  } else if (w == nullptr) {
    OsMutexGuard lock(s->lock);
    g = PopGlobalFreeLocked(s);
  }
  if (g == nullptr) {
    g = new G;
    OsMutexGuard lock(s->all_gs_lock);
    g->all_index = static_cast<int32_t>(s->all_gs.size());
    s->all_gs.push_back(g);
  }
  g->sched_link = nullptr;
  return g;
}

// Pops a stack from the global pool.
bool PopGlobalStackLocked(Sched* s, Stack* out) GL_REQUIRES(s->lock) {
  if (s->free_stacks.empty()) return false;
  *out = s->free_stacks.back();
  s->free_stacks.pop_back();
  auto n = static_cast<int64_t>(s->free_stacks.size());
  s->nfree_stacks.store(n, std::memory_order_relaxed);
  if (n < s->nfree_stacks_low) s->nfree_stacks_low = n;
  return true;
}

// A stack: the worker's cache (LIFO: the most recently exited goroutine's, still hot), a batch from
// the global pool, or the stack pool (which maps and guards new ones). `w` may be null (a thread
// that is not a worker).
Stack AllocStack(Sched* s, Worker* w) {
  Stack st;
  if (w != nullptr && w->nstack_cache == 0 && s->nfree_stacks.load(std::memory_order_relaxed) > 0) {
    OsMutexGuard lock(s->lock);
    while (w->nstack_cache < kMaxLocalStacks / 2 &&
           PopGlobalStackLocked(s, &w->stack_cache[w->nstack_cache])) {
      ++w->nstack_cache;
    }
  }
  bool reused = true;
  if (w != nullptr && w->nstack_cache > 0) {
    st = w->stack_cache[--w->nstack_cache];
  } else {
    bool found = false;
    if (w == nullptr) {
      OsMutexGuard lock(s->lock);
      found = PopGlobalStackLocked(s, &st);
    }
    if (!found) {
      reused = false;
      if (!s->stacks->Allocate(&st)) {
        Fatal("runtime: cannot allocate a goroutine stack (out of memory or mappings)");
      }
    }
  }
  // A finished goroutine's last frames leave ASan poison behind (a no-op in other builds).
  if (reused) UnpoisonStack(st.lo, st.size);
  return st;
}

// Keeps a free stack for reuse: in the worker's cache, half of it moving to the global pool when
// full. Giving pages back is the monitor's job (ScavengeStacks), off this path.
void FreeStack(Sched* s, Worker* w, const Stack& st) {
  if (w->nstack_cache == kMaxLocalStacks) {
    OsMutexGuard lock(s->lock);
    while (w->nstack_cache > kMaxLocalStacks / 2)
      s->free_stacks.push_back(w->stack_cache[--w->nstack_cache]);
    s->nfree_stacks.store(static_cast<int64_t>(s->free_stacks.size()), std::memory_order_relaxed);
  }
  w->stack_cache[w->nstack_cache++] = st;
}

void GoroutineMain(void* arg);

// Gives an unstarted goroutine its stack, just before a worker first switches to it.
__attribute__((noinline)) void BindStack(Sched* s, Worker* w, G* g) {
  g->stack = AllocStack(s, w);
  InitFiber(&g->fiber, g->stack.lo, g->stack.size, g->stack.hi(), &GoroutineMain, g);
}

void FreeG(Sched* s, Worker* w, G* g) {
  ChangeGStatus(g, GStatus::kDead, GStatus::kIdle, std::memory_order_relaxed);
  g->callable = nullptr;
  g->run = g->destroy = nullptr;
  g->step = nullptr;
  if (g->stack.lo != nullptr) {
    FreeStack(s, w, g->stack);
    g->stack = Stack{};
  }
  g->sched_link = w->gfree;
  w->gfree = g;
  if (++w->ngfree < kMaxLocalFreeGs) return;
  OsMutexGuard lock(s->lock);
  while (w->ngfree > kMaxLocalFreeGs / 2) {
    G* f = w->gfree;
    w->gfree = f->sched_link;
    --w->ngfree;
    f->sched_link = s->gfree;
    s->gfree = f;
    s->ngfree.fetch_add(1, std::memory_order_relaxed);
  }
}

[[noreturn]] void GoroutineExit(Worker* w, G* g);

inline void RunPostSwitch(Worker* w);

// A hibernating goroutine's steps (GoHibernating). Entered afresh, on a new stack, after every
// hibernation: the callable in the G is all it remembers.
void RunSteps(G* g) {
  for (;;) {
    Resume next = g->step(g->callable);
    if (next.wait == nullptr) break;
    g->resume_wait = true;
    next.wait(next.arg);  // returns when the next step may run now; or never (ParkHibernate)
    g->resume_wait = false;
  }
  g->destroy(g->callable);
}

void GoroutineMain(void* arg) {
  G* g = static_cast<G*>(arg);
  FiberEntered();
  RunPostSwitch(CurrentWorker());
  if (!g->started) g->started = true;  // once: the dump reads it (a restarting step must not write)
  try {
    if (g->step != nullptr) {
      RunSteps(g);
    } else {
      g->run(g->callable);
    }
  } catch (const GoexitSignal&) {
    // Goexit: every frame has run its deferred calls on the way here; the goroutine just ends.
    if (g->step != nullptr) g->destroy(g->callable);
  } catch (...) {
    // Go's report, exit status 2 (panic/panic.cc, wired in by run/run.cc).
    g_sched.load(std::memory_order_relaxed)->deps.unrecovered_panic(g->id);
  }
  GoroutineExit(CurrentWorker(), g);
}

void ExecuteFromG0(Worker* w, G* g);

// Picks what runs next without blocking: due timers, the global queue every 61st tick, runnext
// and the local queue, then the global queue.
inline __attribute__((always_inline)) G* FindRunnableFast(Sched* s, Worker* w, bool fire_timers) {
  if (fire_timers && w->timer0_when.load(std::memory_order_relaxed) != 0) RunDueTimers(w, 0);
  if (w->schedtick.load(std::memory_order_relaxed) % 61 == 0) {
    // I/O that completed while this worker kept busy (the poller is otherwise polled when the
    // queue runs dry). Not while a park's commit is pending, for the reason timers are not.
    if (fire_timers && w->poller->Pending()) w->poller->Poll();
    if (G* g = GlobalRunqGet(s, w, 1)) return g;
  }
  if (G* g = RunqGet(w)) return g;
  return GlobalRunqGet(s, w, 0);
}

void MarkRunning(Worker* w, G* g) {
  if (g->stack.lo == nullptr) BindStack(g_sched.load(std::memory_order_relaxed), w, g);
  ChangeGStatus(g, GStatus::kRunnable, GStatus::kRunning, std::memory_order_relaxed);
  w->cur = g;
  w->cur_goid.store(g->id, std::memory_order_relaxed);
  w->schedtick.store(w->schedtick.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

void MarkNone(Worker* w) {
  w->cur = nullptr;
  w->cur_goid.store(0, std::memory_order_relaxed);
}

// C++ exception state travels with its goroutine (g.h, EhState). A goroutine switching out takes
// the thread's state with it and leaves it empty; a goroutine resuming puts its own back, on
// whichever thread it resumes. Without this, a goroutine blocking in a catch block would leave its
// exception as the "current" one of the thread, `throw;` after a migration would rethrow another
// goroutine's exception (or terminate), and std::uncaught_exceptions() would count other
// goroutines' unwinding. Almost every switch finds both sides empty: two loads and a branch.
inline __attribute__((always_inline)) void SaveEhState(Worker* w, G* g) {
  EhState* t = w->eh_globals;
  if (__builtin_expect(t->caught != nullptr || t->uncaught != 0, 0)) {
    g->eh = *t;
    *t = EhState{};
  }
}

inline __attribute__((always_inline)) void RestoreEhState(Worker* w, G* g) {
  if (__builtin_expect(g->eh.caught != nullptr || g->eh.uncaught != 0, 0)) {
    *w->eh_globals = g->eh;
    g->eh = EhState{};
  }
}

// The running goroutine gives up its worker; see the essay. Returns when it runs again, possibly
// on another worker.
void Schedule(Worker* w, G* cur, PostAction action) {
  Sched* s = g_sched.load(std::memory_order_relaxed);
  if (!cur->stack.CanaryIntact()) {
    Fatalf("goroutine %llu: stack overflow (canary overwritten; this stack had no guard page)",
           static_cast<unsigned long long>(cur->id));
  }
  // No timers while a park's commit is pending: the parking goroutine may still hold the lock its
  // commit releases, and a timer callback taking that lock would spin on this very thread.
  G* next = s->stopping.load(std::memory_order_relaxed)
                ? nullptr
                : FindRunnableFast(s, w,
                                   /*fire_timers=*/action != PostAction::kPark &&
                                       action != PostAction::kHibernate);
  if (next == nullptr && action == PostAction::kYield &&
      !s->stopping.load(std::memory_order_relaxed)) {
    // Nothing else is runnable here: a yield is a no-op, not a trip through g0. It still counts
    // as a scheduling point for the monitor.
    w->schedtick.store(w->schedtick.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return;
  }
  w->prev = cur;
  w->action = action;
  Fiber* to;
  if (next != nullptr) {
    MarkRunning(w, next);
    to = &next->fiber;
  } else {
    MarkNone(w);
    to = &w->g0;
  }
  // A hibernating goroutine never comes back to these frames: it restarts on a fresh stack.
  if (action == PostAction::kExit || action == PostAction::kHibernate) {
    SwitchFiberFinal(&cur->fiber, to, w);
  }
  SaveEhState(w, cur);
  // Whoever resumes us hands over its worker: where we run now (maybe not `w`).
  Worker* now = static_cast<Worker*>(SwitchFiber(&cur->fiber, to, w));
  RunPostSwitch(now);
  RestoreEhState(now, cur);
}

void GoroutineExit(Worker* w, G* g) {
  OwnerAdd<int64_t>(w->live, -1);
  ChangeGStatus(g, GStatus::kRunning, GStatus::kDead, std::memory_order_relaxed);
  Schedule(w, g, PostAction::kExit);
  __builtin_unreachable();
}

// Puts g at the tail of w's queue (Go's runqput without `next`), spilling half the queue to the
// global one when full. Inlined: the requeue of every yield goes through here.
inline __attribute__((always_inline)) void RunqPutTail(Worker* w, G* g) {
  for (;;) {
    uint32_t head = w->runq_head.load(std::memory_order_acquire);
    uint32_t tail = w->runq_tail.load(std::memory_order_relaxed);
    if (tail - head < kRunQueueSize) {
      w->runq[tail % kRunQueueSize].store(g, std::memory_order_relaxed);
      w->runq_tail.store(tail + 1, std::memory_order_release);
      return;
    }
    if (RunqPutSlow(g_sched.load(std::memory_order_relaxed), w, g, head, tail)) return;
  }
}

inline __attribute__((always_inline)) void RunPostSwitch(Worker* w) {
  G* prev = w->prev;
  if (prev == nullptr) return;
  w->prev = nullptr;
  PostAction action = w->action;
  w->action = PostAction::kNone;
  switch (action) {
    case PostAction::kYield:
      ChangeGStatus(prev, GStatus::kRunning, GStatus::kRunnable, std::memory_order_relaxed);
      RunqPutTail(w, prev);
      break;
    case PostAction::kHibernate:
      // Its frames are abandoned (only RunSteps' and the wait's: nothing to unwind), so its stack
      // goes back to the cache now, before the commit lets anyone ready it; it restarts at its next
      // step on a stack bound when it runs (MarkRunning). Its TSan fiber goes too: the abandoned
      // frames would otherwise stay on that fiber's shadow stack, growing it at every hibernation.
      DestroyFiber(&prev->fiber);
      FreeStack(g_sched.load(std::memory_order_relaxed), w, prev->stack);
      prev->stack = Stack{};
      [[fallthrough]];
    case PostAction::kPark: {
      auto commit = w->commit;
      void* arg = w->commit_arg;
      w->commit = nullptr;
      if (commit != nullptr && !commit(prev, arg)) {
        // Park abandoned: runnable again at once, first in line.
        CountParked(prev->wait_reason.load(std::memory_order_relaxed), -1);
        prev->wait_reason.store(WaitReason::kNone, std::memory_order_relaxed);
        ChangeGStatus(prev, GStatus::kWaiting, GStatus::kRunnable, std::memory_order_relaxed);
        RunqPut(w, prev, true);
      }
      break;
    }
    case PostAction::kExit:
      FreeG(g_sched.load(std::memory_order_relaxed), w, prev);
      break;
    case PostAction::kNone:
      break;
  }
}

// ---- finding work, parking and waking (g0) -----------------------------------------------------

void ResetSpinning(Sched* s, Worker* w) {
  w->spinning = false;
  // The last spinning worker found work: there may be more, so let another one look.
  if (s->nspinning.fetch_sub(1, std::memory_order_acq_rel) == 1) Wakep(s);
}

G* StealWork(Sched* s, Worker* w) {
  constexpr int kStealTries = 4;
  for (int attempt = 0; attempt < kStealTries; ++attempt) {
    bool last = attempt == kStealTries - 1;
    uint32_t start = FastRand(w);
    for (int i = 0; i < s->nworkers; ++i) {
      Worker* victim = s->workers[(start + i) % s->nworkers].get();
      if (victim == w) continue;
      if (s->stopping.load(std::memory_order_relaxed)) return nullptr;
      // A busy worker may not reach its own due timers soon: fire them here.
      int64_t when = victim->timer0_when.load(std::memory_order_relaxed);
      if (when != 0 && when <= Nanotime()) {
        RunDueTimers(victim, 0);
        if (G* g = RunqGet(w)) return g;  // a timer readied a goroutine onto our queue
      }
      if (G* g = RunqSteal(w, victim, last)) return g;
    }
  }
  return nullptr;
}

void CheckDead(Sched* s) GL_REQUIRES(s->lock);

// Takes w off the idle list if it is still on it (a waker may have taken it already). True if it
// was there.
bool LeaveIdleListLocked(Sched* s, Worker* w) GL_REQUIRES(s->lock) {
  auto it = std::find(s->idle_workers.begin(), s->idle_workers.end(), w);
  if (it == s->idle_workers.end()) return false;
  s->idle_workers.erase(it);
  s->npidle.fetch_sub(1, std::memory_order_acq_rel);
  return true;
}

G* FindRunnable(Sched* s, Worker* w) {
  for (;;) {
    if (s->stopping.load(std::memory_order_relaxed)) return nullptr;
    if (G* g = FindRunnableFast(s, w, /*fire_timers=*/true)) return g;
    // Our own I/O first (submits what goroutines queued, readies what completed), before taking
    // another worker's goroutines. A lone worker has nobody to steal from, and its Wait below
    // submits, reaps and returns at once when anything has completed: a poll here would be a
    // second io_uring_enter (or epoll_wait) on every trip to idle, for nothing.
    if (s->nworkers > 1 && w->poller->Pending() && w->poller->Poll()) continue;

    // Steal, as long as not too many others are already at it.
    if (!w->spinning) {
      int busy = s->nworkers - s->npidle.load(std::memory_order_relaxed);
      if (2 * s->nspinning.load(std::memory_order_relaxed) < busy) {
        w->spinning = true;
        s->nspinning.fetch_add(1, std::memory_order_acq_rel);
      }
    }
    if (w->spinning) {
      if (G* g = StealWork(s, w)) return g;
    }

    // Nothing: park. Recheck the global queue under the lock that Ready's producers take.
    bool was_spinning;
    {
      OsMutexGuard lock(s->lock);
      if (s->stopping.load(std::memory_order_relaxed)) return nullptr;
      if (G* g = GlobalRunqGetLocked(s, w, 0)) return g;
      s->idle_workers.push_back(w);
      int npidle = s->npidle.fetch_add(1, std::memory_order_acq_rel) + 1;
      was_spinning = w->spinning;
      w->spinning = false;
      if (npidle == s->nworkers) CheckDead(s);
    }

    if (was_spinning) {
      // Go's "delicate dance": a goroutine made runnable while we were still counted as spinning
      // did not wake anyone, so look once more before sleeping.
      s->nspinning.fetch_sub(1, std::memory_order_acq_rel);
      bool work = s->grunq_size.load(std::memory_order_acquire) > 0;
      for (int i = 0; i < s->nworkers && !work; ++i) {
        work = !RunqEmpty(s->workers[i].get());
      }
      if (work) {
        OsMutexGuard relock(s->lock);
        if (LeaveIdleListLocked(s, w)) {
          // Still ours to take back: look again as a spinning worker.
          w->spinning = true;
          s->nspinning.fetch_add(1, std::memory_order_acq_rel);
          continue;
        }
        // A waker already took us off the list and set spinning: go on as woken.
        continue;
      }
    }

    // Fire whatever timers are due anywhere (their owners may be busy) before sleeping on them.
    bool fired = false;
    int64_t now = Nanotime();
    for (int i = 0; i < s->nworkers; ++i) {
      Worker* v = s->workers[i].get();
      int64_t when = v->timer0_when.load(std::memory_order_relaxed);
      if (when != 0 && when <= now) {
        RunDueTimers(v, now);
        fired = true;
      }
    }
    if (!fired) {
      w->in_poller_wait = true;
      w->poller->Wait(EarliestTimer(s));
      w->in_poller_wait = false;
    }

    {
      // Woken by a timer deadline or a direct Wake rather than by wakep: leave the list ourselves.
      OsMutexGuard relock(s->lock);
      LeaveIdleListLocked(s, w);
    }
    // What the wait readied is on our queue (or, past its capacity, the global one), and woke
    // nobody: we run the first; for more than that, wake a helper to steal (Go's findrunnable
    // runs one goroutine of its netpoll list and starts idle Ps for the rest).
    if (RunqSize(w) > 1 || s->grunq_size.load(std::memory_order_relaxed) > 0) Wakep(s);
  }
}

void ExecuteFromG0(Worker* w, G* g) {
  MarkRunning(w, g);
  SwitchFiber(&w->g0, &g->fiber, w);
  RunPostSwitch(w);  // g0 never migrates: still w
}

void WorkerLoop(Sched* s, Worker* w) {
  for (;;) {
    G* g = FindRunnable(s, w);
    if (g == nullptr) break;
    if (w->spinning) ResetSpinning(s, w);
    ExecuteFromG0(w, g);
  }
  if (w->spinning) {
    w->spinning = false;
    s->nspinning.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void* WorkerThread(void* arg) {
  Worker* w = static_cast<Worker*>(arg);
  Sched* s = g_sched.load(std::memory_order_acquire);
  tls_worker = w;
  w->tid.store(static_cast<pid_t>(syscall(SYS_gettid)), std::memory_order_relaxed);
  InitThreadFiber(&w->g0);
  w->eh_globals = reinterpret_cast<EhState*>(abi::__cxa_get_globals());
  InstallWorkerAltStack();
  w->poller->Start();
  char name[16];
  std::snprintf(name, sizeof name, "greenline-w%d", w->id);
  pthread_setname_np(pthread_self(), name);
  // No goroutine runs before every worker's poller is up: a worker that set up its io_uring ring
  // late could find the descriptors gone to the goroutines that ran meanwhile.
  s->pollers_started.arrive_and_wait();
  WorkerLoop(s, w);
  w->poller->Stop();
  RemoveWorkerAltStack();
  tls_worker = nullptr;
  return nullptr;
}

void CheckDead(Sched* s) {
  // All workers are idle (we hold s->lock and just made npidle == nworkers): no goroutine is
  // executing or runnable on a worker, and the counters are stable except for what threads that
  // are not workers do (the blocking pool, whose goroutines are in a running-class wait).
  if (s->stopping.load(std::memory_order_relaxed)) return;
  if (s->grunq_size.load(std::memory_order_relaxed) != 0) return;
  // A timer may be about to ready a goroutine: pending in a heap, or firing right now on a worker
  // that is already on the idle list (idle workers fire other workers' due timers). Read the heaps
  // first: a timer leaving one has raised timers_in_flight before (see RunDueTimers).
  if (PendingTimers() != 0) return;
  if (s->timers_in_flight.load(std::memory_order_acquire) != 0) return;
  // A callback that has finished readied its goroutine onto that worker's local queue (visible
  // through the release/acquire on timers_in_flight), where the counts may not show it yet.
  for (const auto& w : s->workers) {
    if (!RunqEmpty(w.get())) return;
  }
  StateCounts counts = SumStateCounts(s);
  if (counts.live <= 0 || counts.blocking != counts.live) return;
  Fatal("all goroutines are asleep - deadlock!");
}

void DumpOnFatal(int fd) { DumpGoroutines(fd); }

}  // namespace

// ---- shared entry points -----------------------------------------------------------------------

__attribute__((noinline)) Worker* CurrentWorker() {
  // The barrier stops the compiler from reusing a thread-pointer value across calls inlined into
  // the caller (the function itself is never inlined, and noipa keeps GCC from treating it as
  // pure across a context switch).
  asm volatile("" ::: "memory");
  return tls_worker;
}

WorkerPoller* CurrentWorkerPoller() {
  Worker* w = CurrentWorker();
  return w != nullptr ? w->poller : nullptr;
}

bool CurrentWorkerHasRunnable() {
  Worker* w = CurrentWorker();
  return w != nullptr && !RunqEmpty(w);
}

uint32_t RunqSize(const Worker* w) {
  uint32_t head = w->runq_head.load(std::memory_order_acquire);
  uint32_t tail = w->runq_tail.load(std::memory_order_acquire);
  return tail - head + (w->runnext.load(std::memory_order_acquire) != nullptr ? 1 : 0);
}

bool RunqEmpty(const Worker* w) {
  // Go's runqempty: a goroutine can move from runnext to the queue between our reads (RunqPut
  // kicking the old runnext), so read until tail is stable around the runnext read.
  for (;;) {
    uint32_t head = w->runq_head.load(std::memory_order_acquire);
    uint32_t tail = w->runq_tail.load(std::memory_order_acquire);
    G* next = w->runnext.load(std::memory_order_acquire);
    if (tail == w->runq_tail.load(std::memory_order_acquire)) {
      return head == tail && next == nullptr;
    }
  }
}

void RunqPut(Worker* w, G* g, bool next) {
  if (next) {
    G* old = w->runnext.exchange(g, std::memory_order_acq_rel);
    if (old == nullptr) return;
    g = old;  // kick the old runnext to the tail
  }
  RunqPutTail(w, g);
}

void GlobalRunqPut(Sched* s, G* g) {
  g->sched_link = nullptr;
  OsMutexGuard lock(s->lock);
  if (s->grunq_tail != nullptr) {
    s->grunq_tail->sched_link = g;
  } else {
    s->grunq_head = g;
  }
  s->grunq_tail = g;
  s->grunq_size.fetch_add(1, std::memory_order_relaxed);
}

void Wakep(Sched* s) {
  if (s->npidle.load(std::memory_order_acquire) == 0) return;
  if (s->nspinning.load(std::memory_order_acquire) != 0) return;
  int zero = 0;
  if (!s->nspinning.compare_exchange_strong(zero, 1, std::memory_order_acq_rel)) return;
  Worker* w = nullptr;
  {
    OsMutexGuard lock(s->lock);
    if (!s->idle_workers.empty()) {
      w = s->idle_workers.back();
      s->idle_workers.pop_back();
      w->spinning = true;  // it starts out counted in nspinning
      s->npidle.fetch_sub(1, std::memory_order_acq_rel);
    }
  }
  if (w == nullptr) {
    s->nspinning.fetch_sub(1, std::memory_order_acq_rel);
    return;
  }
  w->poller->Wake();
}

void CountParked(WaitReason reason, int delta) {
  int r = static_cast<int>(reason);
  if (Worker* w = CurrentWorker()) {
    OwnerAdd<int64_t>(w->parked[r], delta);
  } else if (Sched* s = g_sched.load(std::memory_order_acquire)) {
    s->ext_parked[r].fetch_add(delta, std::memory_order_relaxed);
  }
}

StateCounts SumStateCounts(const Sched* s) {
  StateCounts c;
  c.live = s->ext_live.load(std::memory_order_relaxed);
  for (int r = 0; r < kNumReasons; ++r) {
    c.by_reason[r] = s->ext_parked[r].load(std::memory_order_relaxed);
  }
  for (const auto& w : s->workers) {
    c.live += w->live.load(std::memory_order_relaxed);
    for (int r = 0; r < kNumReasons; ++r) {
      c.by_reason[r] += w->parked[r].load(std::memory_order_relaxed);
    }
  }
  for (int r = 0; r < kNumReasons; ++r) {
    if (IsBlocking(static_cast<WaitReason>(r))) c.blocking += c.by_reason[r];
  }
  c.running = c.live - c.blocking;
  return c;
}

void IllegalGStatusChange(const G* g, GStatus found, GStatus from, GStatus to) {
  Fatal("runtime: goroutine " + std::to_string(g->id) + ": illegal status change " +
        std::string(GStatusName(from)) + " -> " + std::string(GStatusName(to)) + " (it is " +
        std::string(GStatusName(found)) + ")");
}

G* CurrentG() {
  Worker* w = CurrentWorker();
  return w != nullptr ? w->cur : nullptr;
}

uint64_t GoroutineIdOf(const G* g) { return g->id; }

bool OnGoroutine() { return CurrentG() != nullptr; }

namespace {
// The commit of ParkUnlock and ParkHibernateUnlock: gives back the lock the parking goroutine held
// when it called them. Unchecked: the analysis cannot follow a lock handed across a switch.
bool UnlockCommit(G*, void* lock) GL_NO_THREAD_SAFETY_ANALYSIS {
  static_cast<SpinLock*>(lock)->unlock();
  return true;
}

// Park and ParkHibernate: the same but for what happens to the stack.
inline __attribute__((always_inline)) void ParkAs(PostAction action, G* g, Worker* w,
                                                  WaitReason reason, bool (*commit)(G*, void*),
                                                  void* arg) {
  g->wait_reason.store(reason, std::memory_order_relaxed);
  g->wait_since.store(
      g_sched.load(std::memory_order_relaxed)->coarse_now.load(std::memory_order_relaxed),
      std::memory_order_relaxed);
  ChangeGStatus(g, GStatus::kRunning, GStatus::kWaiting, std::memory_order_release);
  OwnerAdd<int64_t>(w->parked[static_cast<int>(reason)], 1);
  w->commit = commit;
  w->commit_arg = arg;
  Schedule(w, g, action);
}
}  // namespace

__attribute__((noinline)) void Park(WaitReason reason, bool (*commit)(G*, void*), void* arg) {
  Worker* w = CurrentWorker();
  G* g = w != nullptr ? w->cur : nullptr;
  if (g == nullptr) Fatal("runtime: Park called outside a goroutine");
  ParkAs(PostAction::kPark, g, w, reason, commit, arg);
}

void ParkHibernate(WaitReason reason, bool (*commit)(G*, void*), void* arg) {
  Worker* w = CurrentWorker();
  G* g = w != nullptr ? w->cur : nullptr;
  if (g == nullptr || !g->resume_wait) {
    Fatal("runtime: ParkHibernate called outside a hibernating goroutine's Resume wait");
  }
  g->resume_wait = false;  // whatever happens next, it starts its next step afresh
  ParkAs(PostAction::kHibernate, g, w, reason, commit, arg);
  __builtin_unreachable();
}

// Unchecked: the lock is given back by UnlockCommit, on the next context (see park.h).
void ParkHibernateUnlock(WaitReason reason, SpinLock* lock) GL_NO_THREAD_SAFETY_ANALYSIS {
  ParkHibernate(reason, &UnlockCommit, lock);
}

void** CurrentPanicSlot() {
  static thread_local void* plain_thread = nullptr;  // a plain thread never migrates
  G* g = CurrentG();
  return g != nullptr ? &g->panic : &plain_thread;
}

uint32_t CheapRandN(uint32_t n) {
  uint32_t r;
  if (Worker* w = CurrentWorker()) {
    r = FastRand(w);
  } else {
    static thread_local uint64_t state = 0;  // a plain thread: never crosses a switch
    if (state == 0) state = 0x9E3779B97F4A7C15ull ^ reinterpret_cast<uintptr_t>(&state);
    r = XorShiftNext(&state);
  }
  return static_cast<uint32_t>((static_cast<uint64_t>(r) * n) >> 32);  // Lemire's range reduction
}

// Unchecked: the lock is given back by UnlockCommit, on the next context (see park.h).
void ParkUnlock(WaitReason reason, SpinLock* lock) GL_NO_THREAD_SAFETY_ANALYSIS {
  Park(reason, &UnlockCommit, lock);
}

void Ready(G* g) {
  Sched* s = g_sched.load(std::memory_order_acquire);
  WaitReason reason = g->wait_reason.load(std::memory_order_relaxed);
  if (g->status.load(std::memory_order_acquire) != GStatus::kWaiting) {
    Fatalf("runtime: Ready of goroutine %llu, which is not waiting",
           static_cast<unsigned long long>(g->id));
  }
  CountParked(reason, -1);
  g->wait_reason.store(WaitReason::kNone, std::memory_order_relaxed);
  ChangeGStatus(g, GStatus::kWaiting, GStatus::kRunnable, std::memory_order_release);
  Worker* w = CurrentWorker();
  if (w != nullptr) {
    RunqPut(w, g, /*next=*/w->cur != nullptr);
    // Reaped by this worker's own poller Wait: FindRunnable runs it and wakes help for the rest.
    if (w->in_poller_wait) return;
  } else {
    GlobalRunqPut(s, g);
  }
  Wakep(s);
}

bool CanSpin(int iter) {
  // sync.Mutex is cooperative, so be conservative, as Go is: a few rounds only, and only when the
  // holder can be running on another CPU and nothing here waits for this worker.
  static const long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  if (iter >= 4 || ncpu <= 1) return false;
  Sched* s = g_sched.load(std::memory_order_acquire);
  if (s == nullptr) return true;  // no runtime: plain threads only, nothing to delay
  if (s->nworkers <= s->npidle.load(std::memory_order_relaxed) +
                         s->nspinning.load(std::memory_order_relaxed) + 1) {
    return false;
  }
  Worker* w = CurrentWorker();
  return w == nullptr || RunqEmpty(w);
}

G* PrepareGoroutine(size_t size, size_t align, void** storage) {
  Sched* s = g_sched.load(std::memory_order_acquire);
  if (s == nullptr) Fatal("runtime: Go called with no runtime running");
  Worker* w = CurrentWorker();
  G* g = AllocG(s, w);
  g->started = false;
  g->id = NewGoid(s, w);
  if (size <= G::kInlineCallableSize && align <= G::kInlineCallableAlign) {
    // Small callable: kept in the G; the stack is bound when the goroutine first runs.
    *storage = g->inline_callable;
  } else {
    g->stack = AllocStack(s, w);
    auto top = reinterpret_cast<uintptr_t>(g->stack.hi());
    auto obj = (top - size) & ~(static_cast<uintptr_t>(align) - 1);
    *storage = reinterpret_cast<void*>(obj);
    InitFiber(&g->fiber, g->stack.lo, g->stack.size, *storage, &GoroutineMain, g);
  }
  g->callable = *storage;
  return g;
}

uint64_t StartGoroutine(G* g, GoEntry run, GoEntry destroy, GoStep step) {
  Sched* s = g_sched.load(std::memory_order_acquire);
  g->run = run;
  g->destroy = destroy;
  g->step = step;
  if (step != nullptr && g->callable != g->inline_callable) {
    Fatal("runtime: a hibernating goroutine's callable must be kept in its G");
  }
  g->wait_reason.store(WaitReason::kNone, std::memory_order_relaxed);
  ChangeGStatus(g, GStatus::kIdle, GStatus::kRunnable, std::memory_order_release);
  uint64_t id = g->id;
  Worker* w = CurrentWorker();
  if (w != nullptr) {
    OwnerAdd<int64_t>(w->live, 1);
    RunqPut(w, g, /*next=*/w->cur != nullptr);
  } else {
    s->ext_live.fetch_add(1, std::memory_order_relaxed);
    GlobalRunqPut(s, g);
  }
  Wakep(s);
  return id;
}

void AbandonGoroutine(G* g) {
  Sched* s = g_sched.load(std::memory_order_acquire);  // g never left kIdle: nothing to change
  OsMutexGuard lock(s->lock);
  if (g->stack.lo != nullptr) {
    s->free_stacks.push_back(g->stack);
    s->nfree_stacks.store(static_cast<int64_t>(s->free_stacks.size()), std::memory_order_relaxed);
    g->stack = Stack{};
  }
  g->sched_link = s->gfree;
  s->gfree = g;
  s->ngfree.fetch_add(1, std::memory_order_relaxed);
}

int64_t ScavengeStacks(Sched* s, int64_t max_release) {
  // Detach a batch of pooled stacks beyond the bound and give their pages back without the lock
  // held.
  std::vector<Stack> batch;
  {
    OsMutexGuard lock(s->lock);
    // Only stacks nobody needed since the last pass are idle: the low-water mark of the pool.
    // After a burst that reused the pool, nothing is taken; once the load is gone, half of what
    // stays idle goes back each pass.
    int64_t idle = s->nfree_stacks_low - kMaxPooledStacks;
    if (idle <= 0) {
      s->nfree_stacks_low = static_cast<int64_t>(s->free_stacks.size());
      return 0;
    }
    auto want = static_cast<size_t>(std::min(max_release, (idle + 1) / 2));
    want = std::min(want, s->free_stacks.size());
    batch.assign(s->free_stacks.end() - static_cast<ptrdiff_t>(want), s->free_stacks.end());
    s->free_stacks.resize(s->free_stacks.size() - want);
    s->nfree_stacks_low = static_cast<int64_t>(s->free_stacks.size());
    s->nfree_stacks.store(s->nfree_stacks_low, std::memory_order_relaxed);
  }
  for (const Stack& st : batch) s->stacks->Release(st);
  return static_cast<int64_t>(batch.size());
}

}  // namespace internal

// ---- public API
// ----------------------------------------------------------------------------------

using internal::g_sched;

void Yield() {
  internal::Worker* w = internal::CurrentWorker();
  internal::G* g = w != nullptr ? w->cur : nullptr;
  if (g == nullptr) {
    sched_yield();
    return;
  }
  internal::Schedule(w, g, internal::PostAction::kYield);
}

uint64_t GoroutineId() {
  internal::G* g = internal::CurrentG();
  return g != nullptr ? g->id : 0;
}

int64_t NumGoroutine() {
  internal::Sched* s = g_sched.load(std::memory_order_acquire);
  return s != nullptr ? internal::SumStateCounts(s).live : 0;
}

StateCounts ReadStateCounts() {
  internal::Sched* s = g_sched.load(std::memory_order_acquire);
  return s != nullptr ? internal::SumStateCounts(s) : StateCounts{};
}

bool RuntimeRunning() { return g_sched.load(std::memory_order_acquire) != nullptr; }

int MaxProcs() {
  internal::Sched* s = g_sched.load(std::memory_order_acquire);
  return s != nullptr ? s->nworkers : 0;
}

uint64_t TotalSwitches() {
  internal::Sched* s = g_sched.load(std::memory_order_acquire);
  if (s == nullptr) return 0;
  uint64_t total = 0;
  for (const auto& w : s->workers) total += w->schedtick.load(std::memory_order_relaxed);
  return total;
}

namespace {

size_t StackSizeFromEnv() {
  const char* env = std::getenv("GREENLINE_STACK_SIZE");
  if (env == nullptr || *env == '\0') return 0;
  char* end = nullptr;
  unsigned long long v = std::strtoull(env, &end, 10);
  if (end != nullptr && (*end == 'k' || *end == 'K')) v *= 1024;
  if (end != nullptr && (*end == 'm' || *end == 'M')) v *= 1024 * 1024;
  return static_cast<size_t>(v);
}

void DiscardGoroutines(internal::Sched* s) {
  // Goroutines still alive are dropped, as a Go program's exit drops them. Callables that never
  // started are destroyed (they own captured state), and so are those of hibernating goroutines
  // between steps (nothing of them is on a stack); started goroutines' frames cannot be unwound
  // from outside and are simply abandoned.
  std::vector<internal::G*> all_gs;
  {
    internal::OsMutexGuard lock(s->all_gs_lock);
    all_gs.swap(s->all_gs);
  }
  for (internal::G* g : all_gs) {
    GStatus st = g->status.load(std::memory_order_relaxed);
    bool between_steps = g->step != nullptr && g->stack.lo == nullptr;
    if (st != GStatus::kIdle && (!g->started || between_steps) && g->destroy != nullptr) {
      g->destroy(g->callable);
    }
    DestroyFiber(&g->fiber);
    delete g;
  }
}

// Go raises RLIMIT_NOFILE's soft limit to the hard one at start-up (os/rlimit.go): a server's
// connections are descriptors, and the soft default (1024) is a relic of select(2).
void RaiseFileLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

}  // namespace

}  // namespace greenline

namespace greenline::internal {

void RunScheduler(std::function<void()> main_goroutine, const Options& options,
                  const SchedulerDeps& deps) {
  if (deps.pollers == nullptr || deps.unrecovered_panic == nullptr) {
    Fatal("runtime: RunScheduler needs a poller backend and a panic report");
  }
  if (g_sched.load(std::memory_order_acquire) != nullptr) {
    Fatal("runtime: Run called while a runtime is already running");
  }
  MaxProcsDecision procs = DecideMaxProcs(options.max_procs);
  auto sched = std::make_unique<Sched>(procs.procs);
  Sched* s = sched.get();
  s->options = options;
  s->nworkers = procs.procs;
  size_t stack_size = options.stack_size;
  if (stack_size == 0) stack_size = StackSizeFromEnv();
  if (stack_size == 0) stack_size = kDefaultStackSize;
  s->stacks = std::make_unique<StackPool>(stack_size);
  s->deps = deps;
  RaiseFileLimit();
  for (int i = 0; i < s->nworkers; ++i) {
    auto w = std::make_unique<Worker>();
    w->id = i;
    w->rand_state = 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(i + 1);
    w->poller = deps.pollers->NewWorkerPoller(i);
    s->workers.push_back(std::move(w));
  }
  deps.pollers->WorkersStarting();
  if (options.log_startup) {
    Logf(LogLevel::kInfo, "runtime: %d workers (%s), %zu KiB goroutine stacks, guard pages by %s",
         s->nworkers, procs.source.c_str(), s->stacks->stack_size() / 1024,
         GuardModeName(s->stacks->guard_mode()));
    Logf(LogLevel::kInfo, "runtime: poller %s", deps.pollers->Describe().c_str());
  }
  LoadSymbols();  // now, so the stack-overflow handler never has to
  s->coarse_now.store(internal::Nanotime(), std::memory_order_relaxed);
  g_sched.store(s, std::memory_order_release);
  SetFatalHook(&internal::DumpOnFatal);
  internal::InstallSignalHandlers(s);

  // Goroutine 1: the main goroutine, queued before any worker starts.
  {
    auto body = [s, fn = std::move(main_goroutine)]() mutable {
      fn();
      // As in Go, nothing else runs once main has returned: workers stop at their next switch.
      s->stopping.store(true, std::memory_order_release);
      internal::OsMutexGuard lock(s->done_mu);
      s->main_done = true;
      s->done_cv.NotifyAll();
    };
    using Body = decltype(body);
    void* storage = nullptr;
    internal::G* g = internal::PrepareGoroutine(sizeof(Body), alignof(Body), &storage);
    new (storage) Body(std::move(body));
    internal::StartGoroutine(
        g,
        [](void* p) {
          Body* b = static_cast<Body*>(p);
          (*b)();
          b->~Body();
        },
        [](void* p) { static_cast<Body*>(p)->~Body(); });
  }

  // Workers inherit the signal mask of the thread that called Run: the runtime blocks no signal
  // (what signal.Notify relies on, runtime/signal/signal.cc).
  for (auto& w : s->workers) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    if (pthread_create(&w->thread, &attr, &internal::WorkerThread, w.get()) != 0) {
      Fatal("runtime: cannot create a worker thread");
    }
    pthread_attr_destroy(&attr);
  }
  internal::StartSignalThread(s);
  internal::StartMonitor(s);

  {
    OsMutexGuard lock(s->done_mu);
    while (!s->main_done) s->done_cv.Wait(s->done_mu);
  }

  // Stop. The monitor and the dump thread first: both signal worker threads, which must still
  // exist. Then workers finish the goroutine they execute (at its next switch) and leave their
  // loops. Then the blocking pool, before anything its finishing jobs could touch goes away.
  internal::StopMonitor();
  internal::StopSignalThread();
  s->stopping.store(true, std::memory_order_release);
  for (auto& w : s->workers) w->poller->Wake();
  for (auto& w : s->workers) pthread_join(w->thread, nullptr);
  bool jobs_in_flight = internal::StopBlockingPool();
  SetFatalHook(nullptr);
  internal::ClearTimers(s);
  g_sched.store(nullptr, std::memory_order_release);
  deps.pollers->WorkersStopped();
  if (jobs_in_flight) {
    // A blocking call still runs on a pool thread and writes its result into its goroutine's
    // stack: keep every stack mapped (a deliberate leak, once per such Run; Main exits anyway).
    static_cast<void>(s->stacks.release());
  }
  DiscardGoroutines(s);
  sched.reset();
}

}  // namespace greenline::internal
