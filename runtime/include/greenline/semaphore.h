// Semaphore: a weighted counting semaphore, golang.org/x/sync/semaphore.Weighted for goroutines.
//
//   greenline::Semaphore disk_slots(4);  // at most 4 units of disk work at once
//
//   void Copy(const File& f) {
//     int64_t w = f.big() ? 2 : 1;
//     disk_slots.Acquire(w);  // parks while fewer than w units are free
//     DoCopy(f);
//     disk_slots.Release(w);
//   }
//
// Overview. The semaphore has a fixed capacity; Acquire(n) takes n units, waiting (the goroutine
// parks with wait reason "semacquire", a blocking-class wait) until they are free, and Release(n)
// gives them back. Waiters are served strictly in arrival order: a large request at the head of
// the queue makes later small ones wait even when enough units for them are free, so a large
// request cannot be starved by a stream of small ones (x/sync's rule). A unit is not tied to a
// goroutine: one goroutine may acquire and another release.
//
// Differences from x/sync: there is no context (no cancellation or deadline: a goroutine that
// must give up waiting selects on a channel instead); an Acquire of more than the capacity, which
// in x/sync blocks until its context ends (forever, with context.Background), is a fatal error
// here, since nothing could ever satisfy it; and releasing more than is held ("semaphore: released
// more than held", a panic in x/sync) and negative weights are fatal errors.
//
// Where from. Acquire from a goroutine (from a plain thread it polls politely instead of parking,
// keeping its place in the queue; the deadlock detector cannot see that thread). TryAcquire and
// Release from any goroutine or thread; they never block.
//
// Lifetime: destroy a Semaphore only when no goroutine waits on it or will call it. A Release that
// has just granted the last waiter is out of the object before the destructor returns.
#pragma once

#include <cstdint>

#include "greenline/internal/spinlock.h"
#include "greenline/internal/wait_list.h"
#include "greenline/thread_annotations.h"

namespace greenline {

class Semaphore {
 public:
  // A semaphore with `capacity` units, all free. capacity >= 0.
  explicit Semaphore(int64_t capacity);
  ~Semaphore();
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  // Takes `n` units, waiting in FIFO order until they are free. Fatal if n is negative or larger
  // than the capacity. May block.
  void Acquire(int64_t n = 1);

  // Takes `n` units if they are free now and nobody is queued ahead; true on success. Never
  // blocks.
  bool TryAcquire(int64_t n = 1);

  // Gives back `n` units and grants queued requests, in order, while they fit. Fatal if that
  // would release more than is held. Never blocks.
  void Release(int64_t n = 1);

  int64_t capacity() const { return capacity_; }

 private:
  struct Waiter;

  const int64_t capacity_;
  SpinLock lock_;
  int64_t held_ GL_GUARDED_BY(lock_) = 0;                    // units acquired and not released
  internal::WaitList<Waiter> waiters_ GL_GUARDED_BY(lock_);  // FIFO of requests, on their stacks
};

}  // namespace greenline
