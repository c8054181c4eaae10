// Sema: Go's runtime semaphore (runtime/sema.go, semacquire1/semrelease1), one per object.
//
// For the primitives of runtime/sync (Mutex, RWMutex), not for applications: it is the sleep and
// wake-up underneath them, as runtime_SemacquireMutex and runtime_Semrelease are for Go's sync
// package. A count of tokens, and a FIFO of goroutines parked until a token is theirs:
//
//   internal::Sema sema;          // count 0
//   sema.Acquire(WaitReason::kSemacquire, /*lifo=*/false);   // parks until a Release
//   ...
//   sema.Release(/*handoff=*/false);                          // from another goroutine
//
// Go keys its semaphores by address in a global hash table of wait trees; here each object owns
// its wait list, so there is no table and no address hashing (the essay in sema.cc says more).
//
// Thread safety: every method may be called concurrently from any goroutine. Acquire parks the
// calling goroutine (never its OS thread); on a plain thread (no goroutine: tests, start-up code)
// it polls politely instead (sched_yield, then short sleeps), as WaitGroup::Wait does. Release
// never blocks and may be called from any thread.
//
// Lifetime: the destructor takes the internal lock once, so a Release that has just let go of a
// token is out of the object before it is destroyed. The owner must still ensure no goroutine waits
// on, or will call into, a Sema being destroyed.
#pragma once

#include <atomic>
#include <cstdint>

#include "greenline/internal/spinlock.h"
#include "greenline/internal/wait_list.h"
#include "greenline/state.h"
#include "greenline/thread_annotations.h"

namespace greenline::internal {

class Sema {
 public:
  // A semaphore holding `count` tokens.
  explicit Sema(uint32_t count = 0) : count_(count) {}
  ~Sema();
  Sema(const Sema&) = delete;
  Sema& operator=(const Sema&) = delete;

  // Takes a token, parking the calling goroutine with `reason` until one is available. `lifo` puts
  // the goroutine at the head of the wait list rather than its tail: Go's Mutex uses that for a
  // goroutine that has already waited once. May block. From a goroutine; on a plain thread it
  // polls (see above) and never joins the wait list.
  void Acquire(WaitReason reason, bool lifo = false);

  // Takes a token if one is available now. Never blocks; from any thread.
  bool TryAcquire();

  // Adds a token and readies the first waiter, if any, to compete for it. With `handoff` (Go's
  // starvation mode) the token goes straight to the first waiter, which nobody can then take from
  // it, and a calling goroutine yields so that the waiter (in this worker's runnext slot) runs
  // now, inheriting the time slice. Never blocks (Yield is not a block); from any thread.
  void Release(bool handoff = false);

  // Goroutines parked in Acquire (or about to park) right now. A snapshot, for tests and metrics.
  uint32_t waiters() const { return nwait_.load(std::memory_order_relaxed); }

 private:
  struct Waiter;
  // Tokens. Taken by a CAS without the lock (Go's cansemacquire: acquire, so a token orders what
  // its releaser did before the grant); added under lock_ (release), so that a release and a
  // waiter's "register, then recheck the count" cannot miss each other.
  std::atomic<uint32_t> count_;
  // Goroutines on the wait list; written under lock_, read racily by waiters().
  std::atomic<uint32_t> nwait_{0};
  SpinLock lock_;
  WaitList<Waiter> waiters_ GL_GUARDED_BY(lock_);  // nodes live on the waiters' stacks
};

}  // namespace greenline::internal
