// G: the runtime's record of one goroutine (Go's g). Internal to runtime/sched.
//
// A G is allocated once and recycled: when its goroutine exits, the G goes to its worker's free
// list and its stack to its worker's stack cache (each overflowing to a global pool), so spawning
// in steady state costs no system call and no allocation; the monitor gives back the pages of
// pooled stacks that stay idle (ScavengeStacks).
//
// Stacks are bound late. A goroutine whose callable fits `inline_callable` gets no stack until a
// worker first switches to it (BindStack, scheduler.cc): a spawned but unstarted goroutine costs
// its G alone, and the stack it gets is the one the last exiting goroutine left in the worker's
// cache, still hot. A burst of N spawns followed by N short runs touches one or two stacks, not N.
// Bigger callables are built atop a stack bound at spawn, as before.
// Every G ever allocated is listed in Sched::all_gs (for dumps, shutdown), as in Go's allgs: the
// list grows to the peak number of goroutines and is freed when the runtime stops.
//
// Ownership of fields:
//   - fiber, entry, callable: written by the creator before the G is published, then only by the
//     worker executing the goroutine. A suspended G's fiber.ctx is read by the dump (racy by
//     design, bounded reads).
//   - status, wait_reason, wait_since: atomics; written by the goroutine's own worker or by the
//     thread that readies it (status only through ChangeGStatus, below); read by the dump and the
//     monitor (relaxed).
//   - sched_link: by whichever queue holds the G, under that queue's protection.
#pragma once

#include <atomic>
#include <cstdint>

#include "greenline/goroutine.h"
#include "greenline/state.h"
#include "runtime/base/runtime_internal.h"
#include "runtime/fiber/fiber.h"
#include "runtime/fiber/stack.h"
#include "runtime/sched/timer.h"

namespace greenline::internal {

// The C++ runtime's per-thread exception-handling state (libsupc++'s and libc++abi's
// __cxa_eh_globals: the stack of exceptions being handled, for `throw;` and
// std::current_exception, and the count behind std::uncaught_exceptions). It belongs to the
// goroutine, not the thread: a goroutine that blocks inside a catch block or in a destructor run
// by unwinding takes it along, and may resume on another worker (see SaveEhState, scheduler.cc).
// The layout is the Itanium C++ ABI's on Linux x86-64 and aarch64 (32-bit ARM EABI adds a field).
struct EhState {
  void* caught = nullptr;
  unsigned int uncaught = 0;
};

struct G {
  // Room for a small callable (most lambdas: a few pointers), so it needs no stack before it runs.
  static constexpr size_t kInlineCallableSize = 64;
  static constexpr size_t kInlineCallableAlign = 16;
  alignas(kInlineCallableAlign) unsigned char inline_callable[kInlineCallableSize];

  Fiber fiber;
  Stack stack;  // lo == nullptr: not bound yet (unstarted goroutine with an inline callable)
  uint64_t id = 0;
  bool started = false;  // the entry began running; written by the executing worker only
  std::atomic<GStatus> status{GStatus::kIdle};
  std::atomic<WaitReason> wait_reason{WaitReason::kNone};
  std::atomic<int64_t> wait_since{0};  // when it parked (Sched::coarse_now)
  GoEntry run = nullptr;               // runs and destroys the callable
  GoEntry destroy = nullptr;           // destroys an unstarted callable
  GoStep step = nullptr;     // a hibernating goroutine's step (GoHibernating); run is unused then
  bool resume_wait = false;  // in a hibernating goroutine's Resume wait, on its outermost frame
  void* callable = nullptr;  // in inline_callable, or atop the stack (see above)
  G* sched_link = nullptr;   // global run queue, free lists
  Timer sleep_timer;         // Sleep's timer: fn readies this G
  EhState eh;                // its exception-handling state while switched out; empty while it runs
  void* panic = nullptr;     // innermost panic its frames handle (panic/panic.cc); this G's only
  int32_t all_index = -1;    // position in Sched::all_gs
};
static_assert(G::kInlineCallableSize >= kMaxHibernatingCallable && G::kInlineCallableAlign >= 16);

// The goroutine status machine (GStatus, greenline/state.h). Every change of G::status goes
// through ChangeGStatus, which names the status it changes from (Go's casgstatus, marl's
// changeFiberState):
//   kIdle     -> kRunnable  started (StartGoroutine)
//   kRunnable -> kRunning   a worker switches to it (MarkRunning)
//   kRunning  -> kRunnable  it yields
//   kRunning  -> kWaiting   it parks (Park, ParkHibernate)
//   kWaiting  -> kRunnable  readied, or its park abandoned by the commit
//   kRunning  -> kDead      it returned, or Goexit ended it (GoroutineExit)
//   kDead     -> kIdle      its G recycled (FreeG)
constexpr bool IsGStatusTransition(GStatus from, GStatus to) {
  switch (from) {
    case GStatus::kIdle:
      return to == GStatus::kRunnable;
    case GStatus::kRunnable:
      return to == GStatus::kRunning;
    case GStatus::kRunning:
      return to == GStatus::kRunnable || to == GStatus::kWaiting || to == GStatus::kDead;
    case GStatus::kWaiting:
      return to == GStatus::kRunnable;
    case GStatus::kDead:
      return to == GStatus::kIdle;
  }
  return false;
}

// Debug and sanitizer builds check every change against the machine above; release builds store.
#if !defined(NDEBUG) || GREENLINE_ASAN || GREENLINE_TSAN
inline constexpr bool kCheckGStatus = true;
#else
inline constexpr bool kCheckGStatus = false;
#endif

// A fatal error naming the goroutine, the change asked for and the status it found.
[[noreturn]] void IllegalGStatusChange(const G* g, GStatus found, GStatus from, GStatus to);

// Changes g's status from `from` (what the caller knows it to be: only the goroutine's own worker,
// or the one thread that readies it, changes it at any moment) to `to`, with `order` for readers
// (the dump, the monitor, Ready's check).
inline void ChangeGStatus(G* g, GStatus from, GStatus to, std::memory_order order) {
  if constexpr (kCheckGStatus) {
    GStatus found = g->status.load(std::memory_order_relaxed);
    if (found != from || !IsGStatusTransition(from, to)) IllegalGStatusChange(g, found, from, to);
  }
  g->status.store(to, order);
}

}  // namespace greenline::internal
