// Parking and readying goroutines: the one mechanism every blocking primitive is built on.
//
// For the runtime's own modules (sync/, chan/, netpoll/), not for applications. The protocol is
// Go's gopark/goready:
//   - a primitive puts the current goroutine (CurrentG()) on its own wait list, under its own lock;
//   - it calls Park(reason, commit, arg): the goroutine is switched out, and only once its
//     registers are saved does `commit(g, arg)` run, on the worker's next context. Typically commit releases
//     the primitive's lock, so no other thread can Ready() the goroutine before it is fully parked.
//     If commit returns false the park is abandoned and the goroutine runs again at once;
//   - later, some goroutine or thread removes it from the wait list and calls Ready(g).
// A goroutine is Ready()ed exactly once per Park().
#pragma once

#include <cstdint>

#include "greenline/internal/spinlock.h"
#include "greenline/state.h"
#include "greenline/thread_annotations.h"
#include "runtime/base/runtime_internal.h"

namespace greenline::internal {

struct G;

// The goroutine executing on this thread, or nullptr on a thread that is not running one.
G* CurrentG();

uint64_t GoroutineIdOf(const G* g);

// Parks the current goroutine with `reason`; see above. Must be called on a goroutine.
void Park(WaitReason reason, bool (*commit)(G* g, void* arg), void* arg);

// Park() whose commit unlocks `lock`: the common case. The lock is given back on every path (once
// the goroutine is switched out), so callers hold it when they call and not when it returns.
void ParkUnlock(WaitReason reason, SpinLock* lock) GL_RELEASE(lock);

// Park() for a hibernating goroutine (GoHibernating) in the Resume wait between its steps, the only
// place it may be called: nothing on the stack is kept, so the stack goes back to the pool as the
// goroutine parks, and once readied it starts its next step on a fresh stack. Never returns (also
// not when commit abandons the park: the next step then starts at once).
[[noreturn]] void ParkHibernate(WaitReason reason, bool (*commit)(G* g, void* arg), void* arg);
[[noreturn]] void ParkHibernateUnlock(WaitReason reason, SpinLock* lock) GL_RELEASE(lock);

// Makes a parked goroutine runnable. From a goroutine: it goes in this worker's runnext slot (it
// runs next, inheriting the time slice, as in Go). From any other thread: the global run queue.
// Wakes an idle worker when none is already looking for work.
void Ready(G* g);

// The calling goroutine's slot for its innermost panic being handled (panic/panic.cc), or the
// plain thread's.
void** CurrentPanicSlot();

// A cheap pseudo-random number in [0, n) (n > 0) from the calling worker's generator (a per-thread
// one on other threads): select's case order. Not for anything that must be unpredictable.
uint32_t CheapRandN(uint32_t n);

// Go's sync_runtime_canSpin, for sync.Mutex's active spinning: true if spin round `iter` (from 0)
// is worth it: fewer than 4 rounds so far, more than one CPU, another worker busy running
// goroutines (so the holder may be running and release soon), and nothing queued on this worker
// (spinning would delay it). Callable from any thread; on a plain thread the last test is skipped.
bool CanSpin(int iter);

}  // namespace greenline::internal
