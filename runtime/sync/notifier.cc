// Notifier (see greenline/notifier.h): a permit and at most one parked goroutine, under a SpinLock.
//
// Lost wake-ups. The waiter checks the permit and registers itself under the same lock, and parks
// with ParkUnlock, which releases the lock only once the goroutine is switched out (park.h). So a
// Notify either comes before (it leaves the permit, which the waiter takes without parking) or
// after (it finds the waiter registered and readies it); never between. The permit is cleared by
// the waiter only, when it takes it, so nothing a Notify says is ever dropped.
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
  internal::G* g;
  {
    SpinLockGuard guard(lock_);
    g = waiter_;
    waiter_ = nullptr;
    permit_ = g == nullptr;  // a parked waiter takes the permit as it is readied
  }
  if (g != nullptr) internal::Ready(g);
}

bool Notifier::TryWait() {
  SpinLockGuard guard(lock_);
  bool had = permit_;
  permit_ = false;
  return had;
}

__attribute__((noinline)) void Notifier::Wait() {
  internal::G* g = internal::CurrentG();
  if (g == nullptr) {
    internal::PollUntil([this] { return TryWait(); });
    return;
  }
  lock_.lock();
  if (permit_) {
    permit_ = false;
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
  if (n->permit_) {
    n->permit_ = false;
    n->lock_.unlock();
    return;  // the next step runs now
  }
  if (n->waiter_ != nullptr) Fatal("sync: Notifier::Wait by two goroutines at once");
  n->waiter_ = internal::CurrentG();
  internal::ParkHibernateUnlock(WaitReason::kSyncNotifierWait, &n->lock_);
}

Resume Notifier::ResumeWhenNotified() { return Resume{&Notifier::WaitHibernating, this}; }

}  // namespace greenline
