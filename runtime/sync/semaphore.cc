// Semaphore: golang.org/x/sync/semaphore.Weighted, with goroutines parked instead of channels.
//
// State: units held and a FIFO of requests, all under one SpinLock. Acquire succeeds at once only
// if its units are free *and* nobody is queued (otherwise it would overtake the queue); else it
// queues a node on its own stack and parks with ParkUnlock, so a Release can only see it once it is
// fully parked. Release subtracts, then grants from the head of the queue while the head request
// fits, and stops at the first that does not: skipping a large request to serve smaller ones
// behind it would starve it under load (x/sync's reasoning). Granting is done under the lock (the
// units are counted as held before the waiter runs); readying happens after the lock is dropped,
// reading each node's `next` first, since a node dies as soon as its goroutine runs.
//
// Plain threads queue too, with no goroutine in their node: the releaser sets the node's `granted`
// flag (its last touch of the node) and the thread, polling that flag, returns. So plain threads
// keep their place in the FIFO.
//
// Rejected: building on internal::Sema (it counts unit tokens and cannot hold a large request's
// place while units trickle in one at a time); one Sema per request size (no global order).
#include "greenline/semaphore.h"

#include <atomic>

#include "runtime/base/fatal.h"
#include "runtime/sched/park.h"
#include "runtime/sync/internal/poll.h"

namespace greenline {

// A queued request, on its caller's stack until granted.
struct Semaphore::Waiter {
  internal::G* g;  // nullptr for a plain thread, which polls `granted`
  int64_t n;
  Waiter* next = nullptr;
  // Set by the releaser after unlinking the node: for a plain thread, the last touch of the node
  // (release; the poller's acquire load sees the grant).
  std::atomic<bool> granted{false};
};

Semaphore::Semaphore(int64_t capacity) : capacity_(capacity) {
  if (capacity < 0) Fatal("semaphore: negative capacity");
}

Semaphore::~Semaphore() {
  // Wait out a Release still inside the lock: it may have just granted the last waiter.
  lock_.lock();
  lock_.unlock();
}

__attribute__((noinline)) void Semaphore::Acquire(int64_t n) {
  if (n < 0) Fatal("semaphore: negative weight");
  if (n > capacity_) {
    Fatalf("semaphore: acquire of %lld exceeds the capacity %lld (it could never succeed)",
           static_cast<long long>(n), static_cast<long long>(capacity_));
  }
  lock_.lock();
  if (capacity_ - held_ >= n && waiters_.empty()) {
    held_ += n;
    lock_.unlock();
    return;
  }
  internal::G* g = internal::CurrentG();
  Waiter self{g, n};
  waiters_.PushBack(&self);
  if (g != nullptr) {
    internal::ParkUnlock(WaitReason::kSemacquire, &lock_);
    return;  // readied only once granted
  }
  lock_.unlock();
  internal::PollUntil([&] { return self.granted.load(std::memory_order_acquire); });
}

bool Semaphore::TryAcquire(int64_t n) {
  if (n < 0) Fatal("semaphore: negative weight");
  SpinLockGuard lock(lock_);
  if (capacity_ - held_ < n || !waiters_.empty()) return false;
  held_ += n;
  return true;
}

void Semaphore::Release(int64_t n) {
  if (n < 0) Fatal("semaphore: negative weight");
  Waiter* granted = nullptr;
  Waiter** granted_tail = &granted;
  lock_.lock();
  held_ -= n;
  if (held_ < 0) {
    lock_.unlock();
    Fatal("semaphore: released more than held");
  }
  while (!waiters_.empty() && capacity_ - held_ >= waiters_.front()->n) {
    Waiter* w = waiters_.PopFront();
    held_ += w->n;
    *granted_tail = w;
    granted_tail = &w->next;
  }
  lock_.unlock();
  while (granted != nullptr) {
    Waiter* w = granted;
    granted = w->next;  // read first: the node dies once its owner runs
    internal::G* g = w->g;
    w->granted.store(true, std::memory_order_release);
    if (g != nullptr) internal::Ready(g);
  }
}

}  // namespace greenline
