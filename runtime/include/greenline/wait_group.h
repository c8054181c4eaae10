// WaitGroup: Go's sync.WaitGroup. Waits for a collection of goroutines to finish.
//
//   greenline::WaitGroup wg;
//   for (int i = 0; i < n; ++i) {
//     wg.Add(1);
//     greenline::Go([&] { work(); wg.Done(); });
//   }
//   wg.Wait();
//
// Wait() parks the goroutine with wait reason "sync.WaitGroup.Wait" (a blocking-class wait: only
// another goroutine's Done() can end it, so a WaitGroup nobody finishes is a deadlock the runtime
// reports). Add and Done may be called from any goroutine or thread; Wait only from a goroutine (on
// a plain thread it spins politely, for tests and start-up code).
//
// Lifetime, as in Go: the WaitGroup may be destroyed as soon as Wait() returns, even while the
// Done() that released it is still returning. So the counter and the number of waiters share one
// atomic word: a Done() that brings the counter to zero with no waiter registered touches nothing
// after that atomic operation, and waiters register (in the same word) before they park, so a
// Done() that sees waiters knows the object stays alive until it has released them.
#pragma once

#include <atomic>
#include <cstdint>

#include "greenline/internal/spinlock.h"
#include "greenline/thread_annotations.h"

namespace greenline {

class WaitGroup {
 public:
  WaitGroup() = default;
  WaitGroup(const WaitGroup&) = delete;
  WaitGroup& operator=(const WaitGroup&) = delete;

  // Adds `delta` (may be negative) to the counter. When it reaches zero every waiter is released.
  // A negative counter throws RuntimeError("sync: negative WaitGroup counter"): Go's panic.
  // Non-blocking.
  void Add(int64_t delta);

  // Add(-1).
  void Done() { Add(-1); }

  // Blocks until the counter is zero. Returns at once if it already is.
  void Wait();

 private:
  struct Waiter;
  // High 32 bits: the counter (signed). Low 32 bits: goroutines registered to wait.
  std::atomic<uint64_t> state_{0};
  // A semaphore that releases waiters: tokens_ and the waiter list are under lock_. A release that
  // finds no parked waiter (it registered but has not parked yet) leaves a token it will take.
  SpinLock lock_;
  uint32_t tokens_ GL_GUARDED_BY(lock_) = 0;
  Waiter* waiters_ GL_GUARDED_BY(lock_) = nullptr;  // intrusive FIFO, nodes on waiters' stacks
  Waiter* waiters_tail_ GL_GUARDED_BY(lock_) = nullptr;
};

}  // namespace greenline
