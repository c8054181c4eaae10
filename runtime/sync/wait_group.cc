// WaitGroup (see wait_group.h for the lifetime argument). The state word is Go's layout: counter in
// the high half, waiter count in the low half; Wait registers with a CAS only while the counter is
// positive, and the Add that brings the counter to zero with waiters resets the word and releases
// exactly that many waiters through a small semaphore (tokens plus a FIFO of parked goroutines).
#include "greenline/wait_group.h"

#include <unistd.h>

#include "greenline/runtime_error.h"
#include "runtime/base/fatal.h"
#include "runtime/sched/park.h"

namespace greenline {

// A parked waiter: lives on the waiting goroutine's stack until it is readied.
struct WaitGroup::Waiter {
  internal::G* g;
  Waiter* next;
};

void WaitGroup::Add(int64_t delta) {
  uint64_t state = state_.fetch_add(static_cast<uint64_t>(delta) << 32, std::memory_order_acq_rel) +
                   (static_cast<uint64_t>(delta) << 32);
  auto counter = static_cast<int32_t>(state >> 32);
  auto waiters = static_cast<uint32_t>(state);
  if (counter < 0) throw RuntimeError("sync: negative WaitGroup counter");  // Go panics
  if (counter > 0 || waiters == 0) return;  // nothing to release: do not touch *this again
  // Counter zero with waiters: they cannot return before we release them, so *this is alive.
  // Nobody may Add concurrently now (Go's rule: Add with a positive delta at zero happens before
  // Wait), so the word is exactly `state`.
  if (state_.load(std::memory_order_relaxed) != state) {
    Fatal("sync: WaitGroup misuse: Add called concurrently with Wait");
  }
  state_.store(0, std::memory_order_relaxed);
  Waiter* list;
  {
    SpinLockGuard lock(lock_);
    list = waiters_;
    uint32_t parked = 0;
    Waiter* last = nullptr;
    for (Waiter* w = waiters_; w != nullptr && parked < waiters; w = w->next) {
      ++parked;
      last = w;
    }
    // Waiters that registered but have not parked yet take a token instead.
    tokens_ += waiters - parked;
    if (last != nullptr) {
      waiters_ = last->next;
      if (waiters_ == nullptr) waiters_tail_ = nullptr;
      last->next = nullptr;
    }
  }
  while (list != nullptr) {
    Waiter* next = list->next;  // read first: the node dies once its goroutine runs
    internal::Ready(list->g);
    list = next;
  }
}

__attribute__((noinline)) void WaitGroup::Wait() {
  internal::G* g = internal::CurrentG();
  if (g == nullptr) {
    // A plain thread (tests, start-up code): no goroutine to park; never registers.
    while ((state_.load(std::memory_order_acquire) >> 32) != 0) usleep(50);
    return;
  }
  uint64_t state = state_.load(std::memory_order_acquire);
  for (;;) {
    if ((state >> 32) == 0) return;
    if (state_.compare_exchange_weak(state, state + 1, std::memory_order_acq_rel,
                                     std::memory_order_acquire)) {
      break;
    }
  }
  // Registered: the Add that reaches zero releases us, by a token or by readying us.
  lock_.lock();
  if (tokens_ > 0) {
    --tokens_;
    lock_.unlock();
    return;
  }
  Waiter self{g, nullptr};
  if (waiters_tail_ != nullptr) {
    waiters_tail_->next = &self;
  } else {
    waiters_ = &self;
  }
  waiters_tail_ = &self;
  internal::ParkUnlock(WaitReason::kSyncWaitGroupWait, &lock_);
}

}  // namespace greenline
