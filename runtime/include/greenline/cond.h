// Cond: Go's sync.Cond. A rendezvous point for goroutines waiting for, or announcing, an event.
//
//   greenline::Mutex mu;
//   greenline::Cond not_empty(mu);
//   std::deque<Job> queue GL_GUARDED_BY(mu);
//
//   Job Take() {
//     greenline::MutexLock lock(mu);
//     while (queue.empty()) not_empty.Wait();  // unlocks mu while it waits, relocks before return
//     Job j = std::move(queue.front());
//     queue.pop_front();
//     return j;
//   }
//   void Put(Job j) {
//     { greenline::MutexLock lock(mu); queue.push_back(std::move(j)); }
//     not_empty.Signal();
//   }
//
// Overview. A Cond is tied to a lock L given at construction: a Mutex, an RWMutex (its write
// side), or anything else with lock() and unlock() that does not block the OS thread. Wait must be
// called with L held; it atomically (with respect to Signal and Broadcast) starts waiting and
// unlocks L, parks the goroutine with wait reason "sync.Cond.Wait" (blocking-class: a Cond nobody
// signals is a deadlock the runtime reports), and locks L again before returning. Since L is free
// while it waits, the condition may be false again when Wait returns: wait in a loop, as above.
// There are no spurious wake-ups: Wait returns only after a Signal or Broadcast that came after it
// started.
//
// Signal wakes the goroutine that has waited longest (each Wait takes a ticket; Go's notify list);
// Broadcast wakes every goroutine waiting. Holding L while calling them is allowed, not required.
//
// Where from. Wait from a goroutine (on a plain thread it polls politely instead of parking, and
// the deadlock detector cannot see that thread). Signal and Broadcast from any goroutine or thread;
// they never block.
//
// Lifetime. The Cond (and L) must outlive every call on them; destroy a Cond only when no goroutine
// waits on it. A waiter that has returned may destroy it at once: the destructor waits for a Signal
// or Broadcast still inside the Cond's own lock.
#pragma once

#include <atomic>
#include <cstdint>

#include "greenline/internal/spinlock.h"
#include "greenline/internal/wait_list.h"
#include "greenline/thread_annotations.h"

namespace greenline {

class Cond {
 public:
  // A Cond whose waiters hold `l`, which must outlive it. `l` is used through its lock() and
  // unlock() members only.
  template <class L>
  requires requires(L& l) {
    l.lock();
    l.unlock();
  }
  explicit Cond(L& l)
      : l_(&l),
        // Unchecked: Wait takes L back for its caller, which holds it before and after (a Mutex,
        // an RWMutex and our own locks are capabilities: the analysis would see one function that
        // only locks and one that only unlocks).
        lock_([](void* p) GL_NO_THREAD_SAFETY_ANALYSIS { static_cast<L*>(p)->lock(); }),
        unlock_([](void* p) GL_NO_THREAD_SAFETY_ANALYSIS { static_cast<L*>(p)->unlock(); }) {}
  ~Cond();
  Cond(const Cond&) = delete;
  Cond& operator=(const Cond&) = delete;

  // Unlocks L, waits for a Signal or Broadcast that comes after this call began, locks L again.
  // L must be held. Blocks.
  void Wait();

  // Wakes the goroutine that has waited longest, if any. Never blocks; from any thread.
  void Signal();

  // Wakes every waiting goroutine. Never blocks; from any thread.
  void Broadcast();

 private:
  struct Waiter;

  // L, type-erased: the object and its two members.
  void* l_;
  void (*lock_)(void*);
  void (*unlock_)(void*);

  // Go's notifyList. Tickets are handed out in order; tickets below notify_ have been notified.
  // Both wrap around (compared by signed difference, as Go's `less`).
  std::atomic<uint32_t> wait_{0};  // next ticket to hand out; fetch_add without the lock
  // Next ticket to notify: written under list_lock_ (release), read without it by waiters on
  // plain threads and by the empty-list fast path of Signal and Broadcast (acquire).
  std::atomic<uint32_t> notify_{0};
  SpinLock list_lock_;
  internal::WaitList<Waiter> waiters_ GL_GUARDED_BY(list_lock_);  // parked, on their stacks
};

}  // namespace greenline
