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
#pragma once

#include <atomic>
#include <cstdint>

#include "runtime/base/spinlock.h"

namespace greenline {
namespace internal {
struct G;
}

class WaitGroup {
 public:
  WaitGroup() = default;
  WaitGroup(const WaitGroup&) = delete;
  WaitGroup& operator=(const WaitGroup&) = delete;

  // Adds `delta` (may be negative) to the counter. When it reaches zero every waiter is released.
  // A negative counter is a fatal error "sync: negative WaitGroup counter" (a panic, once the
  // defer/panic/recover layer lands), as in Go. Non-blocking.
  void Add(int64_t delta);

  // Add(-1).
  void Done() { Add(-1); }

  // Blocks until the counter is zero. Returns at once if it already is.
  void Wait();

 private:
  struct Waiter;
  // The counter is read lock-free by Wait's fast path; the waiter list is under `lock_`.
  std::atomic<int64_t> count_{0};
  SpinLock lock_;
  Waiter* waiters_ = nullptr;  // guarded by lock_; intrusive, nodes live on the waiters' stacks
};

}  // namespace greenline
