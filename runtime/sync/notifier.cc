// Notifier (see greenline/notifier.h): a permit and at most one parked goroutine, under a SpinLock.
//
// Lost wake-ups. The waiter checks the permit and registers itself under the same lock, and parks
// with ParkUnlock, which releases the lock only once the goroutine is switched out (park.h). So a
// Notify either comes before (it leaves the permit, which the waiter takes without parking) or
// after (it finds the waiter registered and readies it); never between. The permit is cleared by
// the waiter only, when it takes it, so nothing a Notify says is ever dropped.
//
// The fast path. A waiter is parked only while the permit is clear (it takes the permit instead of
// parking, and a Notify that readies it leaves the permit clear), so a Notify that finds the permit
// set has nobody to wake and nothing to add: it returns after one load. That load and the waiter's
// take are seq_cst, which makes the usual "push under the queue's lock, then Notify" safe: if the
// waiter took the permit before our push became visible to it, that take precedes our load in the
// total order, so our load reads the cleared permit (or a later Notify's) and we go the slow way.
//
// Readied means notified. Notify readies the waiter only after taking it out of `waiter_` and
// consuming the permit on its behalf, under the lock: the goroutine's wait is over when it runs,
// with nothing left to recheck. That is what lets a hibernating goroutine wait here without a
// stack (nothing of its wait is kept), and what a wait on two sources will build on.
#include "greenline/notifier.h"

#include "runtime/base/fatal.h"
#include "runtime/sched/park.h"
#include "runtime/sync/internal/poll.h"

namespace greenline {

Notifier::~Notifier() {
  // Wait out a Notify still inside the lock: its waiter may have run and destroyed us already.
  lock_.lock();
  lock_.unlock();
}

void Notifier::Notify() {
  if (permit_.load(std::memory_order_seq_cst)) return;
  internal::G* g;
  {
    SpinLockGuard guard(lock_);
    g = waiter_;
    waiter_ = nullptr;
    // A parked waiter takes the permit as it is readied: it stays clear.
    if (g == nullptr) permit_.store(true, std::memory_order_seq_cst);
  }
  if (g != nullptr) internal::Ready(g);
}

bool Notifier::TryWait() {
  // Without the lock: only the (single) waiter clears the permit.
  return permit_.exchange(false, std::memory_order_seq_cst);
}

__attribute__((noinline)) void Notifier::Wait() {
  internal::G* g = internal::CurrentG();
  if (g == nullptr) {
    internal::PollUntil([this] { return TryWait(); });
    return;
  }
  lock_.lock();
  if (permit_.exchange(false, std::memory_order_seq_cst)) {
    lock_.unlock();
    return;
  }
  if (waiter_ != nullptr) Fatal("sync: Notifier::Wait by two goroutines at once");
  waiter_ = g;
  internal::ParkUnlock(WaitReason::kSyncNotifierWait, &lock_);  // readied by Notify, permit taken
}

void Notifier::WaitHibernating(void* self) {
  auto* n = static_cast<Notifier*>(self);
  n->lock_.lock();
  if (n->permit_.exchange(false, std::memory_order_seq_cst)) {
    n->lock_.unlock();
    return;  // the next step runs now
  }
  if (n->waiter_ != nullptr) Fatal("sync: Notifier::Wait by two goroutines at once");
  n->waiter_ = internal::CurrentG();
  internal::ParkHibernateUnlock(WaitReason::kSyncNotifierWait, &n->lock_);
}

Resume Notifier::ResumeWhenNotified() { return Resume{&Notifier::WaitHibernating, this}; }

}  // namespace greenline
