// What a netpoller backend (uring.cc, epoll.cc) builds on. Internal to runtime/netpoll.
//
// A backend is a Netpoll (netpoll.h) plus its own PollDesc subclass:
//   - NewDesc hands out a subclass from the backend's PollDescCache with the backend's fields
//     reset; OpenPollDesc resets the generic ones and calls Register;
//   - operations park the calling goroutine on the descriptor with ParkOnPollDesc (or, for a
//     hibernating goroutine's Resume wait, HibernateOnPollDesc) after checking PollDescError under
//     the descriptor's lock; whatever completes the wait takes the goroutine out of pd->rg / wg
//     under that lock and Ready()s it after releasing it;
//   - Teardown(live) and Recycle() are the descriptor's one teardown path, run by the last
//     reference (netpoll.cc); Evict (Close) and Interrupt (a deadline) cancel what is in the
//     kernel.
// A backend reaches the scheduler only through sched/poller.h (its workers' pollers, the calling
// worker's) and sched/park.h (park, ready): never through sched/internal/.
#pragma once

#include <atomic>
#include <cstdint>

#include "greenline/internal/spinlock.h"
#include "greenline/thread_annotations.h"
#include "runtime/base/runtime_internal.h"
#include "runtime/netpoll/netpoll.h"

namespace greenline::internal {

// The handshake between a poller's Wait and Wake (netpoll.cc's essay): a token and a `sleeping`
// flag, both seq_cst, so a wakeup is never lost and the eventfd is written only when needed.
class WakeGate {
 public:
  // The sleeper, before it sleeps: false if a Wake came first (then do not sleep).
  bool BeginSleep() {
    sleeping_.store(true, std::memory_order_seq_cst);
    if (token_.exchange(0, std::memory_order_seq_cst) == 0) return true;
    sleeping_.store(false, std::memory_order_relaxed);
    return false;
  }
  // The sleeper, once awake.
  void EndSleep() {
    sleeping_.store(false, std::memory_order_relaxed);
    token_.exchange(0, std::memory_order_acquire);
  }
  // Any thread: true if the sleeper must be kicked (it sleeps, or is about to).
  bool Wake() {
    return token_.exchange(1, std::memory_order_seq_cst) == 0 &&
           sleeping_.load(std::memory_order_seq_cst);
  }

 private:
  std::atomic<uint32_t> token_{0};
  std::atomic<bool> sleeping_{false};
};

// A backend's free PollDescs of type D (a PollDesc subclass). Process-wide and never freed, so a
// late deadline timer or a stale epoll event only ever finds a PollDesc, never freed memory.
template <class D>
class PollDescCache {
 public:
  // A recycled D, or a new one.
  D* Get() {
    {
      SpinLockGuard guard(lock_);
      if (PollDesc* pd = free_) {
        free_ = pd->next_free;
        pd->next_free = nullptr;
        return static_cast<D*>(pd);
      }
    }
    return new D();
  }
  void Put(D* d) {
    SpinLockGuard guard(lock_);
    d->next_free = free_;
    free_ = d;
  }

 private:
  SpinLock lock_;
  PollDesc* free_ GL_GUARDED_BY(lock_) = nullptr;
};

// The base of a backend's descriptor type D (struct D final : BackendDesc<D>): D's cache, Recycle
// into it, and the cast from the PollDesc the generic code hands back. D implements Teardown.
template <class D>
struct BackendDesc : PollDesc {
  static PollDescCache<D>& Cache() {
    static auto* cache = new PollDescCache<D>();  // never freed: see PollDescCache
    return *cache;
  }
  // A PollDesc this backend made (NewDesc) as what it is.
  static D* Of(PollDesc* pd) { return static_cast<D*>(pd); }
  void Recycle() final { Cache().Put(static_cast<D*>(this)); }
};

// Parks the calling goroutine as pd's reader (write=false) or writer until readied, and gives the
// lock back (once the goroutine is switched out). Checks nothing: callers test PollDescError
// first.
void ParkOnPollDesc(PollDesc* pd, bool write) GL_RELEASE(pd->lock);
// The same for a hibernating goroutine's Resume wait (ParkHibernate): never returns.
[[noreturn]] void HibernateOnPollDesc(PollDesc* pd) GL_RELEASE(pd->lock);
// The error a wait on that side must return now (closing, a passed deadline), or 0.
int PollDescError(const PollDesc* pd, bool write) GL_REQUIRES(pd->lock);

}  // namespace greenline::internal
